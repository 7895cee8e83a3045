-- Code action through the real UI (vim.lsp.buf.code_action with vim.ui.select
-- answering like a user): "add doc comment" is resolved by the server and the
-- edit lands in the buffer.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin()

H.run(function()
  local bufnr = H.open('src/geometry.rs')
  local row = H.find_line(bufnr, 'let mut total = 0.0;')
  vim.api.nvim_win_set_cursor(0, { row, 4 })
  local offered = {}
  local wanted
  -- Answers the code action menu like a user picking the title containing `wanted`.
  vim.ui.select = function(items, _, on_choice)
    offered = {}
    local choice, choice_index
    for index, item in ipairs(items) do
      -- 0.7 passes {client_id, action}; 0.11 passes {action = ..., ctx = ...}.
      local action = item.action or item[2]
      table.insert(offered, action.title)
      if not choice and action.title:find(wanted, 1, true) then
        choice, choice_index = item, index
      end
    end
    on_choice(choice, choice_index)
  end
  local before = H.buffer_text(bufnr)
  wanted = 'add doc comment'
  vim.lsp.buf.code_action()
  H.wait('the code action edit', function()
    return H.buffer_text(bufnr) ~= before
  end)
  local result = { offered = offered, text = H.buffer_text(bufnr) }
  -- "explain this code" carries a sextant.explain command: the plugin runs it
  -- and shows the answer like :SextantExplain does.
  wanted = 'explain this code'
  vim.lsp.buf.code_action()
  local explain_buffer = H.wait('the explanation buffer', function()
    local candidate = vim.fn.bufnr('sextant://explain')
    return candidate ~= -1 and H.buffer_text(candidate) ~= '' and candidate or nil
  end)
  result.explanation = H.buffer_text(explain_buffer)
  return result
end)
