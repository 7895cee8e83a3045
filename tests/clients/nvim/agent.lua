-- :SextantAgent <task> with `ui.results = 'float'`: the task reaches the
-- agent's model and its final answer is shown in a floating window.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin({ ui = { results = 'float' } })

H.run(function()
  H.open('src/main.rs')
  vim.cmd('SextantAgent Check whether main prints the midpoint')
  local answer = H.wait('the agent answer in a float', function()
    return H.float_text()
  end)
  return { answer = answer, scratch_buffer = vim.fn.bufnr('sextant://agent') }
end)
