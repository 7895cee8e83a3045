" ycm.vim - Vim 9 + YouCompleteMe (Debian 12) drives sextant-lsp. Run as
" `vim -Nu ycm.vim`, in tmux, by tests/tests/editors.rs.
execute 'source ' . fnameescape(expand('<sfile>:p:h') . '/harness.vim')
" ycmd needs Debian's Python (its modules live there), not one found first on PATH.
let g:ycm_server_python_interpreter = '/usr/bin/python3'
" ycmd's log (in $TMPDIR) shows the shutdown it sends when Vim quits.
let g:ycm_keep_logfiles = 1
let g:ycm_log_level = 'debug'
" ---- README snippet (tests/tests/editors.rs checks README.md carries it verbatim)
packadd youcompleteme
let g:ycm_language_server = [
\   {'name': 'sextant', 'cmdline': ['sextant-lsp'], 'filetypes': ['rust', 'python']},
\]
" YouCompleteMe sends each word as an argument: the escaped spaces keep one.
command! -nargs=1 SextantChat execute 'YcmCompleter ExecuteCommand sextant.chat' escape(<q-args>, ' \')
" ---- end of README snippet
filetype plugin on
syntax off

function! s:Ready() abort
  " (ycm_state exists once YouCompleteMe has started, after VimEnter)
  return py3eval('"ycm_state" in globals() and bool(ycm_state.CheckIfServerIsReady())')
endfunction

" What the preview window shows (GetHover, ExecuteCommand), else ''.
function! s:Preview() abort
  for l:window in range(1, winnr('$'))
    if getwinvar(l:window, '&previewwindow')
      return join(getbufline(winbufnr(l:window), 1, '$'), "\n")
    endif
  endfor
  return ''
endfunction

" `:YcmCompleter GetHover` (the server's hover) in the preview window, asked
" again every second until the index built at start-up knows the definition.
let s:hover_asked = 0
function! s:Hover() abort
  let l:shown = s:Preview() . "\n" . SextantTestShown()
  if l:shown =~# 'fn distance'
    call SextantTestPut('hover', l:shown)
    pclose
    return 1
  endif
  if localtime() > s:hover_asked && mode() is# 'n'
    let s:hover_asked = localtime()
    call SextantTestGoto('distance(&pair')
    call feedkeys(":YcmCompleter GetHover\<CR>", 't')
  endif
  return 0
endfunction

" `:YcmCompleter FixIt` lists the code actions in a numbered prompt; the user
" types the number of the doc-comment one.
let s:action_state = 0
function! s:CodeAction() abort
  if s:action_state == 0
    let s:action_state = 1
    call SextantTestGoto('pub fn perimeter')
    call feedkeys(":YcmCompleter FixIt\<CR>", 't')
    return 0
  endif
  if s:action_state == 1
    let l:offered = []
    let l:choice = ''
    for l:line in split(SextantTestScreen(), "\n")
      let l:match = matchlist(l:line, '^\(\d\+\): \(.*\)$')
      if !empty(l:match)
        call add(l:offered, l:match[2])
        if l:match[2] is# $SEXTANT_TEST_ACTION
          let l:choice = l:match[1]
        endif
      endif
    endfor
    if !empty(l:choice)
      call SextantTestPut('offered', l:offered)
      call feedkeys(l:choice . "\<CR>", 't')
      let s:action_state = 2
    endif
    return 0
  endif
  if SextantTestText() =~# '/// Sum of'
    call SextantTestPut('text_after_action', SextantTestText())
    return 1
  endif
  return 0
endfunction

" Completion as the user asks for it: a new line in the function body,
" CTRL-Space (YouCompleteMe's key for semantic completion), Tab to pick the
" item, then Esc.
let s:completion_state = 0
function! s:Completion() abort
  if s:completion_state == 0
    let s:completion_state = 1
    call SextantTestGoto('let mut total = 0.0;')
    call feedkeys("A\<CR>\<C-Space>", 't')
    return 0
  endif
  if s:completion_state == 1 && pumvisible()
    let s:completion_state = 2
    call SextantTestPut('menu', complete_info(['items']).items)
    call feedkeys("\<Tab>", 't')
    return 0
  endif
  if s:completion_state == 2 && getline('.') =~# '\S'
    let s:completion_state = 3
    call SextantTestPut('line_when_inserted', getline('.'))
    call feedkeys("\<Esc>", 't')
    return 0
  endif
  if s:completion_state == 3 && mode() is# 'n'
    call SextantTestPut('text_after_completion', SextantTestText())
    return 1
  endif
  return 0
endfunction

let s:chat_asked = 0
function! s:Chat() abort
  if !s:chat_asked
    let s:chat_asked = 1
    call SextantTestGoto('pub fn midpoint')
    call feedkeys(":SextantChat What does midpoint return?\<CR>", 't')
    return 0
  endif
  let l:shown = s:Preview() . "\n" . SextantTestShown()
  if l:shown =~# 'midpoint returns'
    call SextantTestPut('chat_shown', l:shown)
    return 1
  endif
  return 0
endfunction

" Quitting Vim (the harness's last step) makes ycmd shut the server down;
" the test reads ycmd's log for the shutdown request and the exit.
function! s:Shutdown() abort
  call SextantTestPut('ycmd_log', py3eval('ycm_state._server_stderr'))
  return 1
endfunction

set autoindent
silent edit src/geometry.rs
call SextantTestRun([
\ ['start', function('s:Ready')],
\ ['hover', function('s:Hover')],
\ ['code action', function('s:CodeAction')],
\ ['completion', function('s:Completion')],
\ ['chat', function('s:Chat')],
\ ['shutdown', function('s:Shutdown')],
\])
