-- Differences between Neovim 0.7 and 0.8+ (up to 0.11) in one place, so the
-- rest of the plugin reads the same on every version.
local M = {}

M.has_lsp_start = vim.fn.has('nvim-0.8') == 1
-- 0.10 added inline virtual text.
M.has_inline_virt_text = vim.fn.has('nvim-0.10') == 1
-- 0.11 made client methods take `self` (client:request; dot calls are
-- deprecated) and gave vim.str_utfindex/str_byteindex an encoding argument.
local method_calls = vim.fn.has('nvim-0.11') == 1
local encoding_string_api = vim.fn.has('nvim-0.11') == 1

function M.request(client, method, params, handler, bufnr)
  if method_calls then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify(client, method, params)
  if method_calls then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel_request(client, id)
  if method_calls then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.stop(client)
  if method_calls then
    return client:stop()
  end
  return client.stop()
end

--- Clients attached to `bufnr` (all clients when nil), optionally filtered by name.
function M.get_clients(bufnr, name)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = name })
  end
  local found = {}
  local clients = bufnr and vim.lsp.buf_get_clients(bufnr) or vim.lsp.get_active_clients()
  for _, client in pairs(clients) do
    if name == nil or client.name == name then
      table.insert(found, client)
    end
  end
  return found
end

--- The position encoding negotiated with the server ("utf-16" on 0.7).
function M.encoding(client)
  return client.offset_encoding or 'utf-16'
end

--- LSP character index of byte column `col` in `line`.
function M.char_index(line, col, encoding)
  col = math.min(col, #line)
  if encoding == 'utf-8' then
    return col
  end
  if encoding_string_api then
    return vim.str_utfindex(line, encoding, col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return encoding == 'utf-32' and utf32 or utf16
end

--- Byte column of LSP character index `character` in `line` (clamped to the line).
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  if encoding_string_api then
    return vim.str_byteindex(line, encoding, character, false)
  end
  local ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  return ok and col or #line
end

return M
