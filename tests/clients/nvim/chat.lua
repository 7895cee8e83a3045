-- :[range]SextantChat: the selected lines and the prompt reach the server;
-- the answer lands in the sextant://chat scratch buffer shown in a split.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin()

H.run(function()
  -- Every status the statusline would show while the server works ($/progress).
  local statuses = {}
  vim.api.nvim_create_autocmd('User', {
    pattern = 'SextantStatus',
    callback = function()
      table.insert(statuses, require('sextant').status())
    end,
  })
  local bufnr = H.open('src/geometry.rs')
  local first = H.find_line(bufnr, 'pub fn midpoint')
  vim.cmd(string.format('%d,%dSextantChat What does midpoint return?', first, first + 2))
  local answer_buffer = H.wait('the chat answer buffer', function()
    local candidate = vim.fn.bufnr('sextant://chat')
    return candidate ~= -1 and H.buffer_text(candidate) ~= '' and candidate or nil
  end)
  H.wait('the status to return to idle', function()
    return require('sextant').status() == 'idle'
  end)
  local source_still_current = vim.api.nvim_get_current_buf() == bufnr
  local answer_visible = vim.fn.bufwinid(answer_buffer) ~= -1
  -- :checkhealth sextant reports the running server.
  vim.cmd('checkhealth sextant')
  local health = H.buffer_text(0)
  return {
    health = health,
    statuses = statuses,
    answer = H.buffer_text(answer_buffer),
    answer_visible = answer_visible,
    source_still_current = source_still_current,
  }
end)
