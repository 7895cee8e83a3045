-- Inline ("ghost text") completion: asks the server with
-- textDocument/inlineCompletion while typing, draws the first suggestion with
-- extmarks and inserts it on accept.
local compat = require('sextant.compat')
local config = require('sextant.config')

local M = {}

local uv = vim.uv or vim.loop
local namespace = vim.api.nvim_create_namespace('sextant_inline')
M.namespace = namespace

local TRIGGER_INVOKED = 1
local TRIGGER_AUTOMATIC = 2
local SERVER_CANCELLED = -32802
local REQUEST_CANCELLED = -32800

--- The last failure of an inline completion request (shown by :checkhealth-like
--- diagnostics and tests; completions fail quietly while typing).
M.last_error = nil

-- Per buffer: { timer, request = {client, id}, ghost = {...} }.
local buffers = {}

local function buffer_state(bufnr)
  local state = buffers[bufnr]
  if not state then
    state = {}
    buffers[bufnr] = state
  end
  return state
end

local function changedtick(bufnr)
  return vim.api.nvim_buf_get_changedtick(bufnr)
end

local function sextant_client(bufnr)
  return compat.get_clients(bufnr, 'sextant')[1]
end

local function cancel_pending(state)
  if state.request then
    pcall(compat.cancel_request, state.request.client, state.request.id)
    state.request = nil
  end
end

--- Removes the ghost text and forgets the suggestion (the request in flight is cancelled).
function M.clear(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local state = buffers[bufnr]
  if not state then
    return
  end
  if state.timer then
    state.timer:stop()
  end
  cancel_pending(state)
  state.ghost = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  end
end

--- Plain text of an InlineCompletionItem's insertText (string or snippet StringValue).
local function insert_text_of(item)
  local text = item.insertText
  if type(text) == 'table' then
    -- Snippet: keep placeholder defaults, drop tab stops.
    text = (text.value or '')
      :gsub('%${%d+:([^}]*)}', '%1')
      :gsub('%${%d+}', '')
      :gsub('%$%d+', '')
  end
  if type(text) ~= 'string' then
    return nil
  end
  return (text:gsub('\r\n', '\n'))
end

--- Turns the first usable item into a ghost description for the cursor at
--- (row, col) (0-based row, byte col), or nil when nothing can be shown.
local function ghost_from_items(items, bufnr, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  for _, item in ipairs(items) do
    local text = insert_text_of(item)
    if text and text ~= '' then
      local replace_start, replace_end = col, col
      local range = item.range
      if type(range) == 'table' and range.start and range['end']
          and range.start.line == row and range['end'].line == row then
        replace_start = compat.byte_col(line, range.start.character, encoding)
        replace_end = math.max(col, compat.byte_col(line, range['end'].character, encoding))
      end
      -- The text between the range start and the cursor is already typed; the
      -- suggestion must continue it to be shown as ghost text.
      local typed = line:sub(replace_start + 1, col)
      if replace_start <= col and text:sub(1, #typed) == typed then
        local ghost = text:sub(#typed + 1)
        if ghost ~= '' then
          return {
            row = row,
            col = col,
            text = ghost,
            insert_text = text,
            replace_start = replace_start,
            replace_end = replace_end,
          }
        end
      end
    end
  end
  return nil
end

local function render(bufnr, ghost)
  vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  local hl = config.options.inline.hl_group
  local lines = vim.split(ghost.text, '\n', { plain = true })
  local opts = { hl_mode = 'combine', priority = 1000 }
  if lines[1] ~= '' then
    if compat.has_inline_virt_text then
      opts.virt_text = { { lines[1], hl } }
      opts.virt_text_pos = 'inline'
    else
      -- No inline virtual text before 0.10: overlay the suggestion and redraw
      -- the rest of the line after it, so it reads as if inserted.
      local line = vim.api.nvim_buf_get_lines(bufnr, ghost.row, ghost.row + 1, false)[1] or ''
      opts.virt_text = { { lines[1], hl }, { line:sub(ghost.col + 1), 'Normal' } }
      opts.virt_text_pos = 'overlay'
    end
  end
  if #lines > 1 then
    local virt_lines = {}
    for index = 2, #lines do
      table.insert(virt_lines, { { lines[index], hl } })
    end
    opts.virt_lines = virt_lines
  end
  vim.api.nvim_buf_set_extmark(bufnr, namespace, ghost.row, ghost.col, opts)
end

--- Asks the server for an inline completion at the cursor of the current
--- window and shows it. Options: `automatic` (triggered by typing rather than
--- by the user), `on_done(ghost_text_or_nil, error_or_nil)` called once the
--- answer was handled.
function M.request(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local state = buffer_state(bufnr)
  local on_done = opts.on_done or function() end
  local client = sextant_client(bufnr)
  if not client then
    on_done(nil, 'no sextant client attached to this buffer')
    return
  end
  cancel_pending(state)
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local encoding = compat.encoding(client)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = compat.char_index(line, col, encoding) },
    context = { triggerKind = opts.automatic and TRIGGER_AUTOMATIC or TRIGGER_INVOKED },
  }
  local tick = changedtick(bufnr)
  local request_id
  local ok
  ok, request_id = compat.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if state.request and state.request.id == request_id then
      state.request = nil
    end
    if err then
      local message = err.message or vim.inspect(err)
      -- A newer keystroke superseding this request is routine, not a failure.
      if err.code ~= SERVER_CANCELLED and err.code ~= REQUEST_CANCELLED then
        M.last_error = message
      end
      on_done(nil, message)
      return
    end
    -- Ignore answers to a buffer state the user has already moved past.
    local now = vim.api.nvim_win_get_cursor(0)
    if not vim.api.nvim_buf_is_valid(bufnr) or changedtick(bufnr) ~= tick
        or vim.api.nvim_get_current_buf() ~= bufnr or now[1] - 1 ~= row or now[2] ~= col then
      on_done(nil, 'stale')
      return
    end
    local items = type(result) == 'table' and (result.items or result) or {}
    local ghost = ghost_from_items(items, bufnr, row, col, encoding)
    state.ghost = ghost
    if ghost then
      ghost.changedtick = tick
      render(bufnr, ghost)
      on_done(ghost.text, nil)
    else
      vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
      on_done(nil, nil)
    end
  end, bufnr)
  if ok then
    state.request = { client = client, id = request_id }
  else
    on_done(nil, 'the sextant server is not running')
  end
end

--- The suggestion currently shown in `bufnr` (nil when none).
function M.ghost_text(bufnr)
  local state = buffers[bufnr or vim.api.nvim_get_current_buf()]
  return state and state.ghost and state.ghost.text or nil
end

--- Inserts the shown suggestion. Returns false when there was none.
function M.accept()
  local bufnr = vim.api.nvim_get_current_buf()
  local state = buffers[bufnr]
  local ghost = state and state.ghost
  if not ghost or ghost.changedtick ~= changedtick(bufnr) then
    M.clear(bufnr)
    return false
  end
  M.clear(bufnr)
  local lines = vim.split(ghost.insert_text, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, ghost.row, ghost.replace_start, ghost.row, ghost.replace_end, lines)
  local last_row = ghost.row + #lines - 1
  local last_col = #lines[#lines] + (#lines == 1 and ghost.replace_start or 0)
  vim.api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  return true
end

--- Debounced request, used by the insert-mode autocommands.
function M.schedule(bufnr)
  local state = buffer_state(bufnr)
  M.clear(bufnr)
  if not config.options.inline.enabled then
    return
  end
  state.timer = state.timer or uv.new_timer()
  state.timer:start(config.options.inline.debounce_ms, 0, vim.schedule_wrap(function()
    local mode = vim.api.nvim_get_mode().mode
    if vim.api.nvim_get_current_buf() == bufnr and mode:sub(1, 1) == 'i' then
      M.request({ automatic = true })
    end
  end))
end

local function feed(key)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(key, true, false, true), 'n', true)
end

--- Sets up the autocommands and insert-mode keys of `bufnr`.
function M.attach(bufnr)
  local group = vim.api.nvim_create_augroup('sextant_inline_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.schedule(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
      local state = buffers[bufnr]
      if state and state.timer then
        state.timer:close()
      end
      buffers[bufnr] = nil
    end,
  })
  local keys = config.options.inline.keys
  if keys.accept then
    vim.keymap.set('i', keys.accept, function()
      if not M.accept() then
        feed(keys.accept)
      end
    end, { buffer = bufnr, desc = 'sextant: accept the inline suggestion' })
  end
  if keys.dismiss then
    vim.keymap.set('i', keys.dismiss, function()
      if M.ghost_text(bufnr) then
        M.clear(bufnr)
      else
        feed(keys.dismiss)
      end
    end, { buffer = bufnr, desc = 'sextant: dismiss the inline suggestion' })
  end
end

return M
