-- Shared driver for the headless Neovim scenarios (run on 0.7 and 0.11).
--
-- A scenario is a function run in a coroutine from Neovim's main loop, so keys
-- fed with `H.type()` go through real Insert mode (autocommands, mappings)
-- while `H.wait()` polls with timers. Its returned table, plus diagnostics, is
-- written as JSON to $SEXTANT_TEST_RESULT, then Neovim quits.
--
-- Environment (set by tests/tests/nvim_*.rs):
--   SEXTANT_PLUGIN_DIR   editors/nvim            SEXTANT_LSP        server binary
--   SEXTANT_TEST_WORKSPACE  workspace copy       SEXTANT_TEST_SETTINGS  JSON settings
--   SEXTANT_TEST_RESULT  where to write the JSON result
local H = {}

local uv = vim.uv or vim.loop

H.messages = {}
local finished = false

local function now_ms()
  return uv.hrtime() / 1e6
end

local function required_env(name)
  local value = vim.env[name]
  if value == nil or value == '' then
    error('environment variable ' .. name .. ' is not set')
  end
  return value
end

local function write_result(result)
  local path = required_env('SEXTANT_TEST_RESULT')
  result.messages = H.messages
  result.nvim_version = tostring(vim.version().major) .. '.' .. tostring(vim.version().minor)
  local inline = package.loaded['sextant.inline']
  result.inline_last_error = inline and inline.last_error or nil
  local ok_log, log_path = pcall(vim.lsp.get_log_path)
  result.lsp_log = ok_log and log_path or nil
  local file = assert(io.open(path, 'w'))
  file:write(vim.fn.json_encode(result))
  file:close()
end

--- Writes the result and quits. Only the first call counts.
function H.finish(result)
  if finished then
    return
  end
  finished = true
  local ok, err = pcall(write_result, result)
  if not ok then
    io.stderr:write('harness: cannot write the result: ' .. tostring(err) .. '\n')
  end
  vim.cmd('qa!')
end

local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    H.finish({ ok = false, error = debug.traceback(co, tostring(err)) })
  end
end

--- Suspends the scenario for `ms` milliseconds, letting Neovim run.
function H.sleep(ms)
  local co = coroutine.running()
  vim.defer_fn(function()
    resume(co)
  end, ms)
  coroutine.yield()
end

--- Polls `predicate` until it returns a truthy value (returned) or the timeout hits.
function H.wait(what, predicate, timeout_ms)
  local deadline = now_ms() + (timeout_ms or 60000)
  while true do
    -- Errors the plugin shows the user end the scenario at once.
    for _, message in ipairs(H.messages) do
      if message.level >= vim.log.levels.ERROR then
        error('the plugin reported an error while waiting for ' .. what .. ': ' .. message.message, 2)
      end
    end
    local value = predicate()
    if value then
      return value
    end
    if now_ms() > deadline then
      error(string.format('timed out after %d s waiting for %s', (timeout_ms or 60000) / 1000, what), 2)
    end
    H.sleep(50)
  end
end

--- Types `keys` (with <Key> notation) as if from the keyboard, mappings
--- included, and waits until Neovim has consumed them.
function H.type(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mt', false)
  H.wait('typed keys to be processed', function()
    return vim.fn.getchar(1) == 0 and not vim.api.nvim_get_mode().blocking
  end, 10000)
  H.sleep(20)
end

--- Calls `start(callback)` and waits for the callback; returns its arguments.
function H.await(what, start, timeout_ms)
  local done, results = false, nil
  start(function(...)
    done, results = true, { n = select('#', ...), ... }
  end)
  H.wait(what, function()
    return done
  end, timeout_ms)
  return unpack(results, 1, results.n)
end

function H.assert_eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(string.format('%s: expected %s, got %s', what, vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

--- The workspace path of `relative`.
function H.path(relative)
  return required_env('SEXTANT_TEST_WORKSPACE') .. '/' .. relative
end

--- Opens `relative` from the workspace and waits for the server to attach.
function H.open(relative)
  vim.cmd('edit ' .. vim.fn.fnameescape(H.path(relative)))
  local bufnr = vim.api.nvim_get_current_buf()
  H.client = H.wait('sextant-lsp to attach and initialize', function()
    local client = require('sextant.compat').get_clients(bufnr, 'sextant')[1]
    return client and client.initialized and client or nil
  end)
  return bufnr
end

--- Text of the first floating window (e.g. a hover), or nil when none is open.
function H.float_text()
  for _, winid in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(winid).relative ~= '' then
      return H.buffer_text(vim.api.nvim_win_get_buf(winid))
    end
  end
  return nil
end

function H.buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false), '\n')
end

--- 1-based line number of the first line of `bufnr` containing `needle`.
function H.find_line(bufnr, needle)
  for index, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:find(needle, 1, true) then
      return index
    end
  end
  error('no line contains ' .. vim.inspect(needle), 2)
end

--- Loads the plugin from $SEXTANT_PLUGIN_DIR and sets it up for the test
--- server; `overrides` are merged into the setup options.
function H.setup_plugin(overrides)
  vim.opt.runtimepath:prepend(required_env('SEXTANT_PLUGIN_DIR'))
  local settings = vim.fn.json_decode(required_env('SEXTANT_TEST_SETTINGS'))
  local options = vim.tbl_deep_extend('force', {
    cmd = { required_env('SEXTANT_LSP') },
    root_markers = { '.sextant-workspace' },
    settings = settings,
  }, overrides or {})
  require('sextant').setup(options)
end

--- Runs `scenario` (a function returning a table) and finishes with its result.
function H.run(scenario)
  -- Messages shown to the user are part of the diagnostics on failure.
  vim.notify = function(message, level)
    table.insert(H.messages, { level = level or vim.log.levels.INFO, message = tostring(message) })
    io.stderr:write('notify: ' .. tostring(message) .. '\n')
  end
  vim.defer_fn(function()
    H.finish({ ok = false, error = 'scenario did not finish within 150 s' })
  end, 150000)
  local co = coroutine.create(function()
    local result = scenario()
    result = result or {}
    result.ok = true
    H.finish(result)
  end)
  -- Start from the main loop, not from the luafile command.
  vim.schedule(function()
    resume(co)
  end)
end

return H
