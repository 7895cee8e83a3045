-- Hover through the real UI (vim.lsp.buf.hover): the float shows the repo-map
-- facts for `distance`; after set_settings() turns `hover.ai` on
-- (workspace/didChangeConfiguration) it also shows the scripted explanation.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/harness.lua')
H.setup_plugin()

local function close_floats()
  for _, winid in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(winid).relative ~= '' then
      vim.api.nvim_win_close(winid, true)
    end
  end
end

--- Hovers until a float containing `needle` appears (the repo map is built
--- in the background, and settings apply asynchronously); returns its text.
local function hover_text(needle)
  return H.wait('a hover float containing ' .. needle, function()
    close_floats()
    vim.lsp.buf.hover()
    for _ = 1, 60 do
      H.sleep(50)
      local text = H.float_text()
      if text then
        return text:find(needle, 1, true) and text or nil
      end
    end
    return nil
  end, 90000)
end

H.run(function()
  local bufnr = H.open('src/main.rs')
  local row = H.find_line(bufnr, 'a.distance(&b)')
  local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1]
  vim.api.nvim_win_set_cursor(0, { row, (line:find('distance', 1, true)) })
  local plain = hover_text('distance')
  local settings = vim.deepcopy(require('sextant.config').options.settings)
  settings.hover = { ai = true }
  require('sextant').set_settings(settings)
  close_floats()
  local with_ai = hover_text('AI')
  return { hover_without_ai = plain, hover = with_ai }
end)
