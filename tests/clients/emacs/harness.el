;;; harness.el --- shared helpers for the Emacs scenarios  -*- lexical-binding: t -*-
;; Loaded by eglot.el and lsp-mode.el under `emacs --batch'. Environment (set by
;; tests/tests/editors.rs): SEXTANT_TEST_WORKSPACE (a copy of the fixture) and
;; SEXTANT_TEST_RESULT (where the JSON result goes). sextant-lsp is on PATH.

(require 'json)
(require 'cl-lib)
(package-initialize)

(defvar sextant-test-result nil "Alist written as JSON at the end.")
(defvar sextant-test-workspace (getenv "SEXTANT_TEST_WORKSPACE"))

(defun sextant-test-put (key value)
  (setq sextant-test-result (cons (cons key value) (assq-delete-all key sextant-test-result))))

(defun sextant-test-write ()
  (with-temp-file (getenv "SEXTANT_TEST_RESULT")
    (insert (json-encode sextant-test-result))))

(defun sextant-test-wait (predicate what &optional seconds)
  "Process input until PREDICATE holds; signal an error naming WHAT after SECONDS (30)."
  (let ((deadline (+ (float-time) (or seconds 30))))
    (while (not (funcall predicate))
      (when (> (float-time) deadline) (error "timed out waiting for %s" what))
      (accept-process-output nil 0.05))))

(defun sextant-test-messages ()
  (with-current-buffer (messages-buffer) (buffer-substring-no-properties (point-min) (point-max))))

(defun sextant-test-goto (needle)
  "Move point to the start of the first NEEDLE in the buffer."
  (goto-char (point-min))
  (search-forward needle)
  (goto-char (match-beginning 0)))

(defmacro sextant-test-run (&rest body)
  "Run BODY, record an error as `error', always write the result and exit."
  `(progn
     (condition-case err
         (progn ,@body (sextant-test-put 'ok t))
       (error (sextant-test-put 'error (error-message-string err))))
     (sextant-test-put 'messages (sextant-test-messages))
     (sextant-test-write)
     (kill-emacs 0)))

(provide 'harness)
