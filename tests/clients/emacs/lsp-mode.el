;;; lsp-mode.el --- lsp-mode 8.0 (Debian 12) drives sextant-lsp  -*- lexical-binding: t -*-
(load (expand-file-name "harness.el" (file-name-directory load-file-name)))
;; ---- README snippet (tests/tests/editors.rs checks README.md carries it verbatim)
(require 'lsp-mode)
(lsp-register-client
 (make-lsp-client :new-connection (lsp-stdio-connection '("sextant-lsp"))
                  :activation-fn (lsp-activate-on "rust" "python")
                  :add-on? t
                  :server-id 'sextant))
(defun sextant-chat (prompt)
  "Ask Sextant about the current file with PROMPT."
  (interactive "sAsk Sextant: ")
  (lsp-send-execute-command "sextant.chat" (vector (list :prompt prompt :uri (lsp--buffer-uri)))))
;; ---- end of README snippet
(require 'rust-mode)
;; Only Sextant: no rust-analyzer here, and no questions about project roots.
(setq lsp-disabled-clients '(rust-analyzer rls)
      lsp-auto-guess-root t
      lsp-enable-suggest-server-download nil
      lsp-restart 'ignore)

(defvar sextant-test-progress nil "Titles of the $/progress begin reports lsp-mode showed.")
(advice-add 'lsp-on-progress-modeline :before
            (lambda (_workspace params)
              (let ((value (gethash "value" params)))
                (when (equal (gethash "kind" value) "begin")
                  (push (gethash "title" value) sextant-test-progress)))))

(sextant-test-run
 (find-file (expand-file-name "src/geometry.rs" sextant-test-workspace))
 (lsp-workspace-folders-add sextant-test-workspace)
 (lsp)
 (sextant-test-wait (lambda () (and (lsp-workspaces) (eq (lsp--workspace-status (car (lsp-workspaces))) 'initialized)))
                    "lsp-mode to initialize")
 (let ((workspace (car (lsp-workspaces))))
   (sextant-test-put 'step "hover")
   ;; (asked again until the index built at start-up knows the definition)
   (sextant-test-goto "distance(&pair")
   (let (hover)
     (sextant-test-wait
      (lambda ()
        (let ((response (lsp-request "textDocument/hover" (lsp--text-document-position-params))))
          (setq hover (and response (lsp--render-on-hover-content (gethash "contents" response) t)))
          (and hover (string-match-p "fn distance" hover))))
      "a hover naming fn distance")
     (sextant-test-put 'hover (substring-no-properties hover)))
   (sextant-test-put 'step "code action")
   (sextant-test-goto "pub fn perimeter")
   (let ((actions (lsp-code-actions-at-point)))
     (sextant-test-put 'offered (vconcat (mapcar (lambda (a) (gethash "title" a)) actions)))
     ;; lsp-execute-code-action as `M-x lsp-execute-code-action' runs it: the user picks the title
     (cl-letf (((symbol-function 'completing-read) (lambda (&rest _) (getenv "SEXTANT_TEST_ACTION"))))
       (lsp-execute-code-action (lsp--select-action actions))))
   (sextant-test-wait (lambda () (save-excursion (goto-char (point-min)) (search-forward "/// Sum of" nil t)))
                      "the doc comment edit")
   (sextant-test-put 'text_after_action (buffer-substring-no-properties (point-min) (point-max)))
   (sextant-test-put 'step "completion")
   (sextant-test-goto "let mut total = 0.0;")
   (end-of-line)
   (newline-and-indent)
   (lsp-on-change (point) (point) 0) ; flushes didChange
   (completion-at-point)
   (sextant-test-put 'text_after_completion (buffer-substring-no-properties (point-min) (point-max)))
   (sextant-test-put 'step "chat")
   (let ((answer (sextant-chat "What does midpoint return?")))
     (sextant-test-put 'chat_answer answer)
     (sextant-test-put 'messages_when_chat_returned (sextant-test-messages)))
   (sextant-test-put 'progress_titles (vconcat (reverse sextant-test-progress)))
   (sextant-test-put 'step "shutdown")
   (let ((process (lsp--workspace-proc workspace)))
     (lsp-workspace-shutdown workspace)
     (sextant-test-wait (lambda () (not (process-live-p process))) "the server to exit")
     (sextant-test-put 'exit_status (process-exit-status process)))))
