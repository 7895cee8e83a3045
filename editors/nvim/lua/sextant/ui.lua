-- Presenting results: a reusable markdown scratch buffer per kind, or a float.
local config = require('sextant.config')

local M = {}

local function to_lines(text)
  return vim.split((text or ''):gsub('\r\n', '\n'), '\n', { plain = true })
end

--- The scratch buffer called `sextant://<kind>`, created on first use.
local function scratch_buffer(kind)
  local name = 'sextant://' .. kind
  local bufnr = vim.fn.bufnr('^' .. vim.pesc(name) .. '$')
  if bufnr == -1 then
    bufnr = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(bufnr, name)
    vim.api.nvim_buf_set_option(bufnr, 'buftype', 'nofile')
    vim.api.nvim_buf_set_option(bufnr, 'bufhidden', 'hide')
    vim.api.nvim_buf_set_option(bufnr, 'swapfile', false)
    vim.api.nvim_buf_set_option(bufnr, 'filetype', 'markdown')
  end
  return bufnr
end

--- Shows `text` (markdown) as the result of `kind` ("chat", "explain", ...).
--- Returns the buffer holding it.
function M.show(kind, text)
  local lines = to_lines(text)
  if config.options.ui.results == 'float' then
    local bufnr = vim.lsp.util.open_floating_preview(lines, 'markdown', {
      border = 'rounded',
      max_width = math.floor(vim.o.columns * 0.8),
      max_height = math.floor(vim.o.lines * 0.8),
      focus_id = 'sextant_' .. kind,
    })
    return bufnr
  end
  local bufnr = scratch_buffer(kind)
  vim.api.nvim_buf_set_option(bufnr, 'modifiable', true)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(bufnr, 'modifiable', false)
  local winid = vim.fn.bufwinid(bufnr)
  if winid == -1 then
    local previous = vim.api.nvim_get_current_win()
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, bufnr)
    vim.api.nvim_win_set_option(0, 'wrap', true)
    vim.api.nvim_set_current_win(previous)
  end
  return bufnr
end

function M.notify(message, level)
  vim.notify('sextant: ' .. message, level or vim.log.levels.INFO)
end

function M.error(message)
  M.notify(message, vim.log.levels.ERROR)
end

return M
