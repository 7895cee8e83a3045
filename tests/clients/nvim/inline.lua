-- Inline completion while typing in Insert mode: the debounced request shows
-- ghost text (extmarks: first line inline/overlay, the rest as virtual
-- lines) and <Tab> inserts it.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
-- The plugin's default: no client-side debounce on top of the server's.
H.setup_plugin({})

H.run(function()
  local bufnr = H.open('src/geometry.rs')
  -- Keys are typed literally: no automatic indentation.
  vim.bo.autoindent = false
  vim.bo.smartindent = false
  vim.bo.cindent = false
  vim.bo.indentexpr = ''
  local row = H.find_line(bufnr, 'let mut total = 0.0;')
  vim.api.nvim_win_set_cursor(0, { row, 0 })
  -- Multi-byte characters before the cursor, and text after it: positions
  -- must be sent in the negotiated encoding (UTF-16 on 0.7), not as bytes.
  H.type('o    let label = "≈π"; let count = ;<Left>')
  local inline = require('sextant.inline')
  local function ghost_or_failure()
    if inline.last_error then
      error('inline completion failed: ' .. inline.last_error)
    end
    return inline.ghost_text(bufnr)
  end
  local ghost = H.wait('ghost text', ghost_or_failure)
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, inline.namespace, 0, -1, { details = true })
  local mark = marks[1] or {}
  local details = mark[4] or {}
  local virt_lines = {}
  for _, chunks in ipairs(details.virt_lines or {}) do
    table.insert(virt_lines, chunks[1] and chunks[1][1] or '')
  end
  local result = {
    mode_while_shown = vim.api.nvim_get_mode().mode,
    ghost = ghost,
    extmark_count = #marks,
    extmark_row = mark[2],
    extmark_col = mark[3],
    virt_text = details.virt_text and details.virt_text[1] and details.virt_text[1][1] or nil,
    virt_text_pos = details.virt_text_pos,
    virt_lines = virt_lines,
  }
  -- <C-]> dismisses without touching the text; typing brings it back.
  local line_before = vim.api.nvim_get_current_line()
  H.type('<C-]>')
  result.extmarks_after_dismiss = #vim.api.nvim_buf_get_extmarks(bufnr, inline.namespace, 0, -1, {})
  result.line_after_dismiss_unchanged = vim.api.nvim_get_current_line() == line_before
  H.type(' <BS>')
  H.wait('ghost text after typing again', ghost_or_failure)
  H.type('<Tab>')
  result.cursor_after_accept = vim.api.nvim_win_get_cursor(0)
  H.type('<Esc>')
  result.extmarks_after_leaving = #vim.api.nvim_buf_get_extmarks(bufnr, inline.namespace, 0, -1, {})
  result.lines = vim.api.nvim_buf_get_lines(bufnr, row, row + 2, false)
  -- :SextantLastPrompt reports what went into that completion's prompt.
  vim.cmd('SextantLastPrompt')
  local prompt_buffer = H.wait('the last prompt buffer', function()
    local candidate = vim.fn.bufnr('sextant://prompt')
    return candidate ~= -1 and H.buffer_text(candidate) ~= '' and candidate or nil
  end)
  result.last_prompt = H.buffer_text(prompt_buffer)
  return result
end)
