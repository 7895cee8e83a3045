; Sextant tag query for Python (tree-sitter-python 0.25).
;
; Capture naming (read by core/src/repomap/extract.rs):
;   @name.definition.<kind>  the defined identifier
;   @definition.<kind>       the whole definition (signature, docstring, scope)
;   @name.reference.<kind>   a referenced identifier
;   @reference.import        a whole import statement; every imported name
;                            (not `as` aliases) becomes an import reference
; <kind> is one of: class function constant type_alias | call type_ref.
; `function` becomes `method` directly inside a class.

; ---------- definitions ----------
(class_definition name: (identifier) @name.definition.class) @definition.class
(function_definition name: (identifier) @name.definition.function) @definition.function

; Module-level assignments (`NAME = ...`, `NAME: int = ...`).
(module (expression_statement (assignment left: (identifier) @name.definition.constant) @definition.constant))

; `type Alias = ...` (Python 3.12).
(type_alias_statement left: (type (identifier) @name.definition.type_alias)) @definition.type_alias

; ---------- references ----------
(call function: (identifier) @name.reference.call)
(call function: (attribute attribute: (identifier) @name.reference.call))
(decorator (identifier) @name.reference.call)
(decorator (attribute attribute: (identifier) @name.reference.call))

; Base classes and annotations.
(class_definition superclasses: (argument_list (identifier) @name.reference.type_ref))
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @name.reference.type_ref)))
(type (identifier) @name.reference.type_ref)
(type (attribute attribute: (identifier) @name.reference.type_ref))
(generic_type (identifier) @name.reference.type_ref)

; Imports.
(import_statement) @reference.import
(import_from_statement) @reference.import
