-- Sextant for Neovim (0.7+): starts sextant-lsp for file buffers, shows
-- inline completions as ghost text and adds the :Sextant* commands.
local client = require('sextant.client')
local commands = require('sextant.commands')
local config = require('sextant.config')
local inline = require('sextant.inline')

local M = {}

M.status = client.status
M.inline = inline
M.commands = commands

local function on_attach(lsp_client, bufnr)
  vim.api.nvim_buf_set_option(bufnr, 'omnifunc', 'v:lua.vim.lsp.omnifunc')
  if config.options.inline.enabled then
    inline.attach(bufnr)
  end
  if config.options.on_attach then
    config.options.on_attach(lsp_client, bufnr)
  end
end

--- Attaches `bufnr` (default: current) to the server; returns the client id.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  return client.attach(bufnr, on_attach)
end

--- Replaces the server settings and sends them to running servers.
function M.set_settings(settings)
  config.options.settings = settings or {}
  client.notify_settings()
end

local function define_commands()
  local create = vim.api.nvim_create_user_command
  create('SextantChat', function(opts)
    commands.chat(opts)
  end, { nargs = '*', range = true, desc = 'Ask Sextant about the code (range: selected lines as context)' })
  create('SextantExplain', function(opts)
    commands.explain(opts)
  end, { range = true, desc = 'Explain the selected lines' })
  create('SextantAgent', function(opts)
    commands.agent(opts)
  end, { nargs = '*', desc = 'Give Sextant an agent task' })
  create('SextantLastPrompt', function(opts)
    commands.last_prompt(opts)
  end, { desc = 'Show the last prompt sent to the model' })
end

function M.setup(user_options)
  config.apply(user_options)
  define_commands()
  local group = vim.api.nvim_create_augroup('sextant', { clear = true })
  vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile', 'FileType' }, {
    group = group,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  -- Buffers opened before setup() ran.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      M.attach(bufnr)
    end
  end
end

return M
