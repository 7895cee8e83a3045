-- :SextantExplain with the server presenting results itself (`results =
-- "document"`): the server writes .sextant/*.md and asks the editor to open
-- it with window/showDocument, which the plugin handles (0.7 has no handler).
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin()

H.run(function()
  local bufnr = H.open('src/geometry.rs')
  local row = H.find_line(bufnr, 'pub fn perimeter')
  vim.cmd(string.format('%d,%dSextantExplain', row, row + 6))
  local shown = H.wait('the result document to open', function()
    for _, winid in ipairs(vim.api.nvim_list_wins()) do
      local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(winid))
      if name:find('/.sextant/', 1, true) then
        return vim.api.nvim_win_get_buf(winid)
      end
    end
    return nil
  end)
  return {
    document = vim.api.nvim_buf_get_name(shown),
    text = H.buffer_text(shown),
    focused = vim.api.nvim_get_current_buf() == shown,
    scratch_buffer = vim.fn.bufnr('sextant://explain'),
  }
end)
