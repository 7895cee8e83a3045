-- :checkhealth sextant — is the server found, running, and completing?
local compat = require('sextant.compat')
local config = require('sextant.config')

local M = {}

-- 0.7 reports through require('health').report_*, 0.8+ through vim.health
-- (renamed from report_* to start/ok/... in 0.9).
local health = vim.health or require('health')
local report_start = health.start or health.report_start
local report_ok = health.ok or health.report_ok
local report_warn = health.warn or health.report_warn
local report_error = health.error or health.report_error
local report_info = health.info or health.report_info

function M.check()
  report_start('sextant')
  local cmd = config.options.cmd
  local executable = cmd[1]
  if vim.fn.executable(executable) == 1 then
    local version = vim.fn.system({ executable, '--version' }):gsub('%s+$', '')
    if vim.v.shell_error == 0 then
      report_ok(string.format('%s (%s)', version, vim.fn.exepath(executable)))
    else
      report_error(string.format('`%s --version` failed: %s', executable, version))
    end
  else
    report_error(string.format('`%s` is not executable; set `cmd` in setup{} to the sextant-lsp binary', executable))
  end
  local clients = compat.get_clients(nil, 'sextant')
  if #clients == 0 then
    report_warn('no sextant server is running (open a file after setup{})')
  end
  for _, client in ipairs(clients) do
    report_ok(string.format('server %d running for %s (positions: %s)', client.id, client.config.root_dir or '?', compat.encoding(client)))
  end
  report_info('status: ' .. require('sextant.client').status())
  local last_error = require('sextant.inline').last_error
  if last_error then
    report_warn('last inline completion failed: ' .. last_error)
  else
    report_ok('no inline completion failures')
  end
end

return M
