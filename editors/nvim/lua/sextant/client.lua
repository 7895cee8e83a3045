-- Starting sextant-lsp and attaching buffers to it; handlers for the
-- server-to-client requests the plugin shows itself (documents, messages,
-- progress for the status line).
local commands = require('sextant.commands')
local compat = require('sextant.compat')
local config = require('sextant.config')
local ui = require('sextant.ui')

local M = {}

M.name = 'sextant'

-- Longest progress message shown in the status string (characters).
local STATUS_MESSAGE_LIMIT = 60

-- Active $/progress operations by token, for the status line.
local progress = {}
-- Client ids by root directory (Neovim 0.7 has no vim.lsp.start to reuse clients).
local clients_by_root = {}

local function emit_status_changed()
  vim.api.nvim_exec_autocmds('User', { pattern = 'SextantStatus', modeline = false })
end

--- "idle", or what the server is busy with (e.g. "indexing 40%").
function M.status()
  local latest
  for _, operation in pairs(progress) do
    if not latest or operation.seq > latest.seq then
      latest = operation
    end
  end
  if not latest then
    return 'idle'
  end
  local text = latest.title or 'working'
  if latest.message and latest.message ~= '' then
    -- Reports can carry the answer streamed so far: keep one short line.
    local message = latest.message:gsub('%s+', ' ')
    local length = vim.fn.strchars(message)
    if length > STATUS_MESSAGE_LIMIT then
      message = '…' .. vim.fn.strcharpart(message, length - STATUS_MESSAGE_LIMIT)
    end
    text = text .. ': ' .. message
  end
  if latest.percentage then
    text = string.format('%s (%d%%)', text, latest.percentage)
  end
  return text
end

local progress_seq = 0

local function on_progress(err, params, ctx, handler_config)
  local default = vim.lsp.handlers['$/progress']
  if default then
    default(err, params, ctx, handler_config)
  end
  local value = type(params) == 'table' and params.value
  if type(value) ~= 'table' then
    return
  end
  local key = tostring(ctx.client_id) .. ':' .. tostring(params.token)
  progress_seq = progress_seq + 1
  if value.kind == 'begin' then
    progress[key] = { title = value.title, message = value.message, percentage = value.percentage, seq = progress_seq }
  elseif value.kind == 'report' and progress[key] then
    local operation = progress[key]
    operation.message = value.message or operation.message
    operation.percentage = value.percentage or operation.percentage
    operation.seq = progress_seq
  elseif value.kind == 'end' then
    progress[key] = nil
  end
  emit_status_changed()
end

--- window/showDocument: open the file (split unless already visible) and select the range.
local function on_show_document(_, params, ctx)
  if type(params) ~= 'table' or type(params.uri) ~= 'string' then
    return { success = false }
  end
  if params.external then
    if vim.ui.open then
      vim.ui.open(params.uri)
      return { success = true }
    end
    -- No opener before 0.10: say where to look instead.
    ui.notify('open ' .. params.uri .. ' in your browser')
    return { success = false }
  end
  local ok, bufnr = pcall(vim.uri_to_bufnr, params.uri)
  if not ok then
    return { success = false }
  end
  vim.fn.bufload(bufnr)
  vim.api.nvim_buf_set_option(bufnr, 'buflisted', true)
  local winid = vim.fn.bufwinid(bufnr)
  if winid == -1 then
    local previous = vim.api.nvim_get_current_win()
    vim.cmd('split')
    winid = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(winid, bufnr)
    if params.takeFocus == false then
      vim.api.nvim_set_current_win(previous)
    end
  elseif params.takeFocus ~= false then
    vim.api.nvim_set_current_win(winid)
  end
  local selection = params.selection
  if type(selection) == 'table' and type(selection.start) == 'table' then
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    local encoding = client and compat.encoding(client) or 'utf-16'
    local row = math.min(selection.start.line or 0, vim.api.nvim_buf_line_count(bufnr) - 1)
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
    vim.api.nvim_win_set_cursor(winid, { row + 1, compat.byte_col(line, selection.start.character or 0, encoding) })
  end
  return { success = true }
end

local message_levels = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }

--- window/showMessage: a notification; multi-line messages (e.g. answers
--- with `lsp.results = 'message'`) go in full to the sextant://message buffer.
local function on_show_message(_, params)
  if type(params) ~= 'table' or type(params.message) ~= 'string' then
    return
  end
  local first_line = params.message:match('^[^\n]*')
  if first_line ~= params.message then
    ui.show('message', params.message)
  end
  ui.notify(first_line, message_levels[params.type] or vim.log.levels.INFO)
end

local function find_root(bufnr)
  local path = vim.api.nvim_buf_get_name(bufnr)
  local dir = path ~= '' and vim.fn.fnamemodify(path, ':p:h') or vim.fn.getcwd()
  local best
  for _, marker in ipairs(config.options.root_markers) do
    local found = vim.fn.finddir(marker, dir .. ';')
    if found == '' then
      found = vim.fn.findfile(marker, dir .. ';')
    end
    if found ~= '' then
      local marker_path = vim.fn.fnamemodify(found, ':p'):gsub('/$', '')
      local root = vim.fn.fnamemodify(marker_path, ':h')
      -- The nearest marker wins: a nested project is its own workspace.
      if not best or #root > #best then
        best = root
      end
    end
  end
  return best or dir
end

local function client_config(root, on_attach)
  local opts = config.options
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.window = capabilities.window or {}
  capabilities.window.showDocument = { support = true }
  return {
    name = M.name,
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    root_dir = root,
    capabilities = capabilities,
    commands = commands.client_commands(),
    init_options = config.server_settings(),
    settings = { sextant = config.server_settings() },
    handlers = {
      ['$/progress'] = on_progress,
      ['window/showDocument'] = on_show_document,
      ['window/showMessage'] = on_show_message,
    },
    on_attach = on_attach,
    on_exit = function(code, signal)
      for key in pairs(progress) do
        progress[key] = nil
      end
      vim.schedule(function()
        if code ~= 0 then
          ui.error(string.format('sextant-lsp exited with code %d (signal %d); see :lua print(vim.lsp.get_log_path())', code, signal or 0))
        end
        emit_status_changed()
      end)
    end,
  }
end

local function wants(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.api.nvim_buf_get_option(bufnr, 'buftype') ~= '' then
    return false
  end
  if vim.api.nvim_buf_get_name(bufnr) == '' then
    return false
  end
  local filetypes = config.options.filetypes
  if filetypes then
    return vim.tbl_contains(filetypes, vim.api.nvim_buf_get_option(bufnr, 'filetype'))
  end
  return true
end

-- Only used on 0.7, where client methods are called with a dot.
local function is_running(client_id)
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  return client ~= nil and not client.is_stopped()
end

--- Starts (or reuses) the server for `bufnr`'s workspace and attaches the buffer.
--- Returns the client id, or nil when the buffer is not one we handle.
function M.attach(bufnr, on_attach)
  if not wants(bufnr) then
    return nil
  end
  local root = find_root(bufnr)
  local cfg = client_config(root, on_attach)
  if compat.has_lsp_start then
    return vim.lsp.start(cfg, { bufnr = bufnr })
  end
  local client_id = clients_by_root[root]
  if not is_running(client_id) then
    client_id = vim.lsp.start_client(cfg)
    if not client_id then
      ui.error('cannot start ' .. table.concat(cfg.cmd, ' '))
      return nil
    end
    clients_by_root[root] = client_id
  end
  vim.lsp.buf_attach_client(bufnr, client_id)
  return client_id
end

--- Sends new settings to every running server (workspace/didChangeConfiguration).
function M.notify_settings()
  local settings = { sextant = config.server_settings() }
  for _, client in ipairs(compat.get_clients(nil, M.name)) do
    client.config.settings = settings
    compat.notify(client, 'workspace/didChangeConfiguration', { settings = settings })
  end
end

return M
