-- :SextantExplain with `lsp.results = "message"`: the server sends the answer
-- as window/showMessage; the plugin notifies its first line and shows all of
-- it in the sextant://message buffer.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin()

H.run(function()
  local bufnr = H.open('src/geometry.rs')
  local row = H.find_line(bufnr, 'pub fn perimeter')
  vim.cmd(string.format('%dSextantExplain', row))
  local message_buffer = H.wait('the message buffer', function()
    local candidate = vim.fn.bufnr('sextant://message')
    return candidate ~= -1 and H.buffer_text(candidate) ~= '' and candidate or nil
  end)
  return {
    message = H.buffer_text(message_buffer),
    notifications = H.messages,
    scratch_buffer = vim.fn.bufnr('sextant://explain'),
  }
end)
