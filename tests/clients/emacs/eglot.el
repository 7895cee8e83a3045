;;; eglot.el --- eglot 1.9 (Debian 12) drives sextant-lsp  -*- lexical-binding: t -*-
(load (expand-file-name "harness.el" (file-name-directory load-file-name)))
;; ---- README snippet (tests/tests/editors.rs checks README.md carries it verbatim)
(require 'eglot)
(add-to-list 'eglot-server-programs '((rust-mode python-mode) . ("sextant-lsp")))
(defun sextant-chat (prompt)
  "Ask Sextant about the region (or the buffer's file) with PROMPT."
  (interactive "sAsk Sextant: ")
  (eglot-execute-command
   (eglot--current-server-or-lose) 'sextant.chat
   (vector `(:prompt ,prompt :uri ,(eglot--path-to-uri (buffer-file-name))
             ,@(when (use-region-p)
                 `(:range (:start ,(eglot--pos-to-lsp-position (region-beginning))
                           :end ,(eglot--pos-to-lsp-position (region-end)))))))))
;; ---- end of README snippet
(require 'rust-mode)

(sextant-test-run
 (find-file (expand-file-name "src/geometry.rs" sextant-test-workspace))
 (apply #'eglot (eglot--guess-contact))
 (sextant-test-wait (lambda () (eglot-current-server)) "eglot to connect")
 (let ((server (eglot-current-server)))
   (sextant-test-put 'step "hover")
   ;; hover, as eldoc asks for it
   (sextant-test-goto "distance(&pair")
   ;; (asked again until the index built at start-up knows the definition)
   (let (hover)
     (sextant-test-wait
      (lambda ()
        (let ((contents (plist-get (jsonrpc-request server :textDocument/hover (eglot--TextDocumentPositionParams))
                                   :contents)))
          (setq hover (and contents (eglot--hover-info contents)))
          (and hover (string-match-p "fn distance" hover))))
      "a hover naming fn distance")
     (sextant-test-put 'hover hover))
   (sextant-test-put 'step "code action")
   ;; code actions at point: the user picks the doc-comment one in the menu
   (sextant-test-goto "pub fn perimeter")
   (let ((offered (mapcar (lambda (a) (plist-get a :title)) (eglot-code-actions (point) (point)))))
     (sextant-test-put 'offered (vconcat offered))
     ;; (invoked from the keyboard, so eglot asks with completing-read, not a mouse menu)
     (cl-letf ((last-nonmenu-event ?\r)
               ((symbol-function 'completing-read)
                (lambda (&rest _) (getenv "SEXTANT_TEST_ACTION")))
               ;; "Server wants to edit geometry.rs. Proceed?": the user says yes
               ((symbol-function 'y-or-n-p) (lambda (&rest _) t)))
       (eglot-code-actions (point) (point) nil t)))
   (sextant-test-put 'text_after_action (buffer-substring-no-properties (point-min) (point-max)))
   (sextant-test-put 'step "completion")
   ;; completion: a new line in perimeter, then completion-at-point as the user would
   (sextant-test-goto "let mut total = 0.0;")
   (end-of-line)
   (newline-and-indent)
   (eglot--signal-textDocument/didChange)
   (completion-at-point)
   (sextant-test-put 'text_after_completion (buffer-substring-no-properties (point-min) (point-max)))
   (sextant-test-put 'step "chat")
   ;; sextant.chat: the answer must be shown when the request returns
   (sextant-test-goto "pub fn midpoint")
   (let ((answer (sextant-chat "What does midpoint return?")))
     (sextant-test-put 'chat_answer answer)
     (sextant-test-put 'messages_when_chat_returned (sextant-test-messages)))
   (sextant-test-put 'step "shutdown")
   ;; clean shutdown
   (let ((process (jsonrpc--process server)))
     (eglot-shutdown server nil nil t) ; keep the events buffer for the checks
     (sextant-test-wait (lambda () (not (process-live-p process))) "the server to exit")
     (sextant-test-put 'exit_status (process-exit-status process)))
   (sextant-test-put 'events (with-current-buffer (jsonrpc-events-buffer server)
                              (buffer-substring-no-properties (point-min) (point-max))))))
