-- :SextantAgent <task>: the task reaches the agent's model and its final
-- answer lands in the sextant://agent buffer.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin()

H.run(function()
  H.open('src/main.rs')
  vim.cmd('SextantAgent Check whether main prints the midpoint')
  local answer_buffer = H.wait('the agent answer buffer', function()
    local candidate = vim.fn.bufnr('sextant://agent')
    return candidate ~= -1 and H.buffer_text(candidate) ~= '' and candidate or nil
  end)
  return { answer = H.buffer_text(answer_buffer) }
end)
