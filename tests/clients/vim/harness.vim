" harness.vim - shared helpers for the Vim scenarios (ale.vim, ycm.vim).
" Vim runs in a real terminal (tmux, started by tests/tests/editors.rs) so
" that its main loop, timers, channels and insert-mode completion behave as
" when a user types. A scenario is a list of steps; a timer calls the current
" step every 50 ms until it returns 1 (done), so the editor keeps processing
" the server's messages and the keys a step feeds in between. Environment:
" SEXTANT_TEST_WORKSPACE (a copy of the fixture) and SEXTANT_TEST_RESULT
" (where the JSON result goes). sextant-lsp is on PATH.

let g:sextant_test = {}
let s:steps = []
let s:step = 0
let s:deadline = 0
" How long one step may take (start-up and the first index included).
let s:step_seconds = 30

function! SextantTestPut(key, value) abort
  let g:sextant_test[a:key] = a:value
endfunction

function! SextantTestWrite() abort
  call writefile([json_encode(g:sextant_test)], $SEXTANT_TEST_RESULT)
endfunction

" The whole buffer as one string, lines ended by newlines.
function! SextantTestText() abort
  return join(getline(1, '$'), "\n") . "\n"
endfunction

" What the screen shows, one string per row, as the user sees it.
function! SextantTestScreen() abort
  " (a redraw would wipe a prompt that is waiting for input)
  if mode() isnot# 'c'
    redraw
  endif
  let l:rows = []
  for l:row in range(1, &lines)
    let l:text = ''
    for l:col in range(1, &columns)
      let l:text .= screenstring(l:row, l:col)
    endfor
    call add(l:rows, substitute(l:text, '\s\+$', '', ''))
  endfor
  return join(l:rows, "\n")
endfunction

" What the user sees of a message: the preview windows' text (ALE and YCM
" show long messages there) and the command-line rows.
function! SextantTestShown() abort
  let l:screen = split(SextantTestScreen(), "\n", 1)
  let l:shown = l:screen[&lines - &cmdheight :]
  for l:window in range(1, winnr('$'))
    if getwinvar(l:window, '&previewwindow')
      let l:shown += getbufline(winbufnr(l:window), 1, '$')
    endif
  endfor
  return join(l:shown, "\n")
endfunction

" Moves the cursor to the start of the first NEEDLE in the buffer.
function! SextantTestGoto(needle) abort
  call cursor(1, 1)
  if search('\V' . escape(a:needle, '\'), 'cW') == 0
    throw 'not found: ' . a:needle
  endif
endfunction

function! s:Finish() abort
  call SextantTestPut('messages', execute('messages'))
  call SextantTestWrite()
  qall!
endfunction

function! s:Fail(message) abort
  call SextantTestPut('error', a:message)
  call s:Finish()
endfunction

function! s:Tick(timer) abort
  if s:step >= len(s:steps)
    call SextantTestPut('ok', v:true)
    call s:Finish()
    return
  endif
  let [l:name, l:Step] = s:steps[s:step]
  call SextantTestPut('step', l:name)
  try
    let l:done = l:Step()
  catch
    call s:Fail(l:name . ': ' . v:exception . ' at ' . v:throwpoint)
    return
  endtry
  if l:done
    let s:step += 1
    let s:deadline = localtime() + s:step_seconds
  elseif localtime() > s:deadline
    call s:Fail(l:name . ': timed out')
    return
  endif
  call timer_start(50, function('s:Tick'))
endfunction

" Runs STEPS, a list of [name, Funcref]; each Funcref returns 1 when done.
" Starts once Vim has started (plugins such as YouCompleteMe start on VimEnter).
function! SextantTestRun(steps) abort
  let s:steps = a:steps
  augroup sextant_test
    autocmd!
    autocmd VimEnter * let s:deadline = localtime() + s:step_seconds | call timer_start(50, function('s:Tick'))
  augroup END
endfunction
