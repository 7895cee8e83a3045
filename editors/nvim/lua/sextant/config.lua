-- User options with their defaults. `setup{}` deep-merges into these.
local M = {}

local defaults = {
  -- Command that starts the language server (a list, or a single path).
  cmd = { 'sextant-lsp' },
  -- Extra environment for the server process.
  cmd_env = nil,
  -- Filetypes to attach to; nil attaches to every normal file buffer.
  filetypes = nil,
  -- Files/directories marking the workspace root; the buffer's directory otherwise.
  root_markers = { '.sextant', '.git', 'Cargo.toml', 'package.json', 'pyproject.toml', 'go.mod' },
  -- Server settings: sent as initializationOptions at start and through
  -- workspace/didChangeConfiguration whenever `require('sextant').set_settings()` runs.
  settings = {},
  inline = {
    enabled = true,
    -- Extra milliseconds to wait after the last keystroke before asking the
    -- server. 0 asks once the keystroke is processed: the server debounces
    -- (`lsp.completion.debounceMs`) and cancels superseded requests, so a
    -- second debounce here would only add latency.
    debounce_ms = 0,
    hl_group = 'Comment',
    -- Insert-mode keys; set one to false to leave it unmapped.
    keys = { accept = '<Tab>', dismiss = '<C-]>' },
  },
  ui = {
    -- Where command results go: 'split' (scratch buffer) or 'float'.
    results = 'split',
  },
}

M.options = vim.deepcopy(defaults)

--- The settings sent to the server. The plugin shows command results itself,
--- so unless the user picked a mode (`lsp.results`) the server is told not to.
function M.server_settings()
  local settings = vim.deepcopy(M.options.settings or {})
  settings.lsp = settings.lsp or {}
  if settings.lsp.results == nil then
    settings.lsp.results = 'none'
  end
  return settings
end

--- Whether the plugin displays command results (else the server does).
function M.plugin_shows_results()
  return M.server_settings().lsp.results == 'none'
end

function M.apply(user)
  user = user or {}
  local opts = vim.tbl_deep_extend('force', vim.deepcopy(defaults), user)
  -- Lists replace the default instead of merging index by index.
  for _, list_key in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if user[list_key] ~= nil then
      opts[list_key] = user[list_key]
    end
  end
  if type(opts.cmd) == 'string' then
    opts.cmd = { opts.cmd }
  end
  if type(opts.cmd) ~= 'table' or #opts.cmd == 0 then
    error('sextant: `cmd` must be a non-empty list or a path to sextant-lsp')
  end
  if opts.ui.results ~= 'split' and opts.ui.results ~= 'float' then
    error("sextant: `ui.results` must be 'split' or 'float'")
  end
  M.options = opts
  return opts
end

return M
