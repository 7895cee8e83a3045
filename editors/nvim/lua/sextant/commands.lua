-- The sextant.* workspace commands (chat, explain, agent, last prompt): build
-- the arguments from the editor state, run them on the server, show the answer.
local compat = require('sextant.compat')
local config = require('sextant.config')
local ui = require('sextant.ui')

local M = {}

--- Markdown text of a command result (the server answers with markdown text;
--- anything else is shown as data rather than dropped).
function M.result_text(result)
  if type(result) == 'string' then
    return result
  end
  if result == nil or result == vim.NIL then
    return nil
  end
  return '```lua\n' .. vim.inspect(result) .. '\n```'
end

local function client_for(bufnr)
  local client = compat.get_clients(bufnr, 'sextant')[1] or compat.get_clients(nil, 'sextant')[1]
  if not client then
    ui.error('no sextant server is running; open a file first (and check `cmd` in setup{})')
  end
  return client
end

--- LSP range covering whole lines `first`..`last` (1-based, inclusive) of `bufnr`.
function M.line_range(bufnr, client, first, last)
  local last_line = vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1] or ''
  return {
    start = { line = first - 1, character = 0 },
    ['end'] = { line = last - 1, character = compat.char_index(last_line, #last_line, compat.encoding(client)) },
  }
end

--- Runs `command` with `argument` on the server; `on_done(text_or_nil, err_or_nil)`
--- defaults to showing the answer in the `kind` result buffer.
function M.execute(kind, command, argument, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return false
  end
  on_done = on_done or function(text, err)
    if err then
      ui.error(kind .. ' failed: ' .. err)
    elseif text and config.plugin_shows_results() then
      ui.show(kind, text)
    end
  end
  local params = { command = command, arguments = argument and { argument } or {} }
  local ok = compat.request(client, 'workspace/executeCommand', params, function(err, result)
    if err then
      on_done(nil, err.message or vim.inspect(err))
    else
      on_done(M.result_text(result), nil)
    end
  end, bufnr)
  if not ok then
    ui.error('the sextant server is not running')
  end
  return ok
end

local function with_input(prompt, given, callback)
  if given and given ~= '' then
    callback(given)
    return
  end
  vim.ui.input({ prompt = prompt }, function(answer)
    if answer and answer ~= '' then
      callback(answer)
    end
  end)
end

local function buffer_uri(bufnr)
  if vim.api.nvim_buf_get_name(bufnr) == '' then
    return nil
  end
  return vim.uri_from_bufnr(bufnr)
end

--- :[range]SextantChat [prompt]: ask about the workspace, with the current
--- file (and the selected lines when a range is given) as context.
function M.chat(opts, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  with_input('Sextant chat: ', opts.args, function(prompt)
    local client = client_for(bufnr)
    if not client then
      return
    end
    local argument = { prompt = prompt, uri = buffer_uri(bufnr) }
    if opts.range and opts.range > 0 and argument.uri then
      argument.range = M.line_range(bufnr, client, opts.line1, opts.line2)
    end
    M.execute('chat', 'sextant.chat', argument, on_done)
  end)
end

--- :[range]SextantExplain: explain the selected lines (the current line without a range).
function M.explain(opts, on_done)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr)
  local uri = buffer_uri(bufnr)
  if not client then
    return
  end
  if not uri then
    ui.error('SextantExplain needs a file buffer')
    return
  end
  local argument = { uri = uri, range = M.line_range(bufnr, client, opts.line1, opts.line2) }
  M.execute('explain', 'sextant.explain', argument, on_done)
end

--- :SextantAgent [task]: let the agent work on a task in the workspace.
function M.agent(opts, on_done)
  with_input('Sextant agent task: ', opts.args, function(task)
    M.execute('agent', 'sextant.agent', { task = task }, on_done)
  end)
end

--- :SextantLastPrompt: show the last prompt the server sent to the model.
function M.last_prompt(_, on_done)
  M.execute('prompt', 'sextant.showLastPrompt', nil, on_done)
end

-- Result buffer kind of each server command whose answer is shown.
local displayed_commands = {
  ['sextant.chat'] = 'chat',
  ['sextant.explain'] = 'explain',
  ['sextant.agent'] = 'agent',
  ['sextant.showLastPrompt'] = 'prompt',
}

--- Client-side handlers for server commands attached to code actions (e.g.
--- "explain this code"): run them here so the answer is shown like the
--- user commands'. Other commands go to the server as usual.
function M.client_commands()
  local handlers = {}
  for command, kind in pairs(displayed_commands) do
    handlers[command] = function(lsp_command)
      local arguments = lsp_command.arguments or {}
      M.execute(kind, command, arguments[1])
    end
  end
  return handlers
end

return M
