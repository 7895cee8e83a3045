" ale.vim - Vim 9 + ALE 3.3 (Debian 12) drives sextant-lsp. Run as
" `vim -Nu ale.vim`, in tmux, by tests/tests/editors.rs.
execute 'source ' . fnameescape(expand('<sfile>:p:h') . '/harness.vim')
" ---- README snippet (tests/tests/editors.rs checks README.md carries it verbatim)
packadd ale
call ale#linter#Define('rust', {
\   'name': 'sextant',
\   'lsp': 'stdio',
\   'executable': 'sextant-lsp',
\   'command': '%e',
\   'project_root': {buffer -> getcwd()},
\})
let g:ale_linters = {'rust': ['sextant']}
set omnifunc=ale#completion#OmniFunc
function! SextantChat(prompt) abort
  call ale#lsp_linter#SendRequest(bufnr(''), 'sextant',
  \ ale#lsp#message#ExecuteCommand('sextant.chat', [{'prompt': a:prompt, 'uri': ale#util#ToURI(expand('%:p'))}]),
  \ {response -> ale#util#ShowMessage(get(response, 'result', get(get(response, 'error', {}), 'message', '')))})
endfunction
command! -nargs=1 SextantChat call SextantChat(<q-args>)
" ---- end of README snippet
filetype plugin on
syntax off

function! s:Connected() abort
  for l:conn in values(ale#lsp#GetConnections())
    if get(l:conn, 'initialized', 0)
      return 1
    endif
  endfor
  return 0
endfunction

let s:hover_asked = 0
function! s:Hover() abort
  " asked again every second until the index built at start-up knows the definition
  let l:shown = SextantTestShown()
  if l:shown =~# 'fn distance'
    call SextantTestPut('hover', l:shown)
    pclose
    return 1
  endif
  if localtime() > s:hover_asked
    let s:hover_asked = localtime()
    call SextantTestGoto('distance(&pair')
    call feedkeys(":ALEHover\<CR>", "t")
  endif
  return 0
endfunction

" Code actions: `:ALECodeAction` lists them in a numbered prompt; the user
" types the number of the doc-comment one.
let s:action_state = 0
function! s:CodeAction() abort
  if s:action_state == 0
    let s:action_state = 1
    call SextantTestGoto('pub fn perimeter')
    call feedkeys(":ALECodeAction\<CR>", 't')
    return 0
  endif
  if s:action_state == 1 && mode() is# 'c'
    let l:offered = []
    for l:line in split(SextantTestScreen(), "\n")
      let l:match = matchlist(l:line, '^\(\d\+\)) \(.*\)$')
      if !empty(l:match)
        call add(l:offered, l:match[2])
        if l:match[2] is# $SEXTANT_TEST_ACTION
          call feedkeys(l:match[1] . "\<CR>", 't')
          let s:action_state = 2
          let s:action_chosen = localtime()
        endif
      endif
    endfor
    call SextantTestPut('offered', l:offered)
    return 0
  endif
  " ALE runs the action's command; the server cannot send it the edit (ALE
  " declares workspace.applyEdit false), so the text is taken a few seconds on.
  if s:action_state == 2 && (SextantTestText() =~# '/// Sum of' || localtime() > s:action_chosen + 3)
    call SextantTestPut('text_after_action', SextantTestText())
    return 1
  endif
  return 0
endfunction

" Completion as the user asks for it: a new line in the function body, then
" CTRL-X CTRL-O (ALE's omnifunc); the item is inserted, then Esc.
let s:completion_state = 0
function! s:Completion() abort
  if s:completion_state == 0
    let s:completion_state = 1
    call SextantTestGoto('let mut total = 0.0;')
    call feedkeys("A\<CR>\<C-x>\<C-o>", 't')
    return 0
  endif
  if s:completion_state == 1 && mode() is# 'i' && getline('.') =~# '\S'
    let s:completion_state = 2
    call SextantTestPut('line_when_inserted', getline('.'))
    call feedkeys("\<Esc>", 't')
    return 0
  endif
  if s:completion_state == 2 && mode() is# 'n'
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
    call feedkeys(":SextantChat What does midpoint return?\<CR>", "t")
    return 0
  endif
  let l:shown = SextantTestShown()
  if l:shown =~# 'midpoint returns'
    call SextantTestPut('chat_shown', l:shown)
    return 1
  endif
  return 0
endfunction

" ALE stops a server by ending its job (no shutdown request).
let s:jobs = []
function! s:Shutdown() abort
  if empty(s:jobs)
    let s:jobs = map(values(ale#lsp#GetConnections()), 'v:val.job_id')
    ALEStopAllLSPs
    return 0
  endif
  return empty(filter(copy(s:jobs), 'ale#job#IsRunning(v:val)'))
endfunction

set autoindent
silent edit src/geometry.rs
call SextantTestRun([
\ ['start', function('s:Connected')],
\ ['hover', function('s:Hover')],
\ ['code action', function('s:CodeAction')],
\ ['completion', function('s:Completion')],
\ ['chat', function('s:Chat')],
\ ['shutdown', function('s:Shutdown')],
\])
