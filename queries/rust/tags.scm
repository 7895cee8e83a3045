; Sextant tag query for Rust (tree-sitter-rust 0.24).
;
; Capture naming (read by core/src/repomap/extract.rs):
;   @name.definition.<kind>  the defined identifier
;   @definition.<kind>       the whole item (signature, doc comment, scope)
;   @name.reference.<kind>   a referenced identifier
;   @reference.import        a whole `use` item; every identifier inside it
;                            becomes an import reference
;   @reference.macro_invocation  a macro call; items among its tokens become
;                            definitions
;   @attribute               `#[…]` / `#![…]`: no references inside
; <kind> is one of: function struct enum union trait impl module const static
; type_alias macro | call type_ref path macro_call. `path` is a qualifier
; (`Type` or `module` in `a::b`): a type reference if capitalised, else a
; module reference. `function` becomes `method` inside an impl or trait.

; ---------- definitions ----------
(function_item name: (identifier) @name.definition.function) @definition.function
(function_signature_item name: (identifier) @name.definition.function) @definition.function
(struct_item name: (type_identifier) @name.definition.struct) @definition.struct
(enum_item name: (type_identifier) @name.definition.enum) @definition.enum
(union_item name: (type_identifier) @name.definition.union) @definition.union
(trait_item name: (type_identifier) @name.definition.trait) @definition.trait
(impl_item type: (type_identifier) @name.definition.impl) @definition.impl
(impl_item type: (generic_type type: (type_identifier) @name.definition.impl)) @definition.impl
(impl_item type: (scoped_type_identifier name: (type_identifier) @name.definition.impl)) @definition.impl
(impl_item type: (generic_type type: (scoped_type_identifier name: (type_identifier) @name.definition.impl))) @definition.impl
; Only inline modules: `mod foo;` merely declares a file, which the map shows itself.
(mod_item name: (identifier) @name.definition.module body: (declaration_list)) @definition.module
(const_item name: (identifier) @name.definition.const) @definition.const
(static_item name: (identifier) @name.definition.static) @definition.static
(type_item name: (type_identifier) @name.definition.type_alias) @definition.type_alias
(macro_definition name: (identifier) @name.definition.macro) @definition.macro

; ---------- references ----------
; Calls: plain, method, scoped (`Type::new`, `mod::f`) and turbofish forms.
(call_expression function: (identifier) @name.reference.call)
(call_expression function: (field_expression field: (field_identifier) @name.reference.call))
(call_expression function: (scoped_identifier name: (identifier) @name.reference.call))
(call_expression function: (generic_function function: (identifier) @name.reference.call))
(call_expression function: (generic_function function: (field_expression field: (field_identifier) @name.reference.call)))
(call_expression function: (generic_function function: (scoped_identifier name: (identifier) @name.reference.call)))

; Path qualifiers: `Type` and `mod` in `Type::new()`, `mod::f()`, `a::b::C`.
(scoped_identifier path: (identifier) @name.reference.path)
(scoped_identifier path: (scoped_identifier name: (identifier) @name.reference.path))
(scoped_type_identifier path: (identifier) @name.reference.path)
(scoped_type_identifier path: (scoped_identifier name: (identifier) @name.reference.path))

; Inside macro arguments (token trees are not parsed as expressions):
; `name(...)` is a call and `name::` a path qualifier.
(token_tree (identifier) @name.reference.call . (token_tree))
(token_tree (identifier) @name.reference.path . "::")

; Macro invocations.
; @reference.macro_invocation: a macro call whose tokens may hold items
; (`cfg_rt! { pub fn spawn(…) {…} }`, `thread_local! { static … }`). A macro's
; input stays flat token trees, so the code reads such items (`keyword name`,
; extent, signature, doc comment) off the tokens of calls outside function
; bodies.
(macro_invocation macro: (identifier) @name.reference.macro_call) @reference.macro_invocation
(macro_invocation macro: (scoped_identifier name: (identifier) @name.reference.macro_call)) @reference.macro_invocation

; Any type name used anywhere (signatures, struct literals, impl headers,
; generics). Definition names at the same position are dropped in code.
(type_identifier) @name.reference.type_ref

; Imports: every identifier inside the `use` tree.
(use_declaration) @reference.import

; Attributes: their arguments are token trees too, but `doc(cfg(…))` in
; `#[cfg_attr(docsrs, doc(cfg(feature = "rt")))]` or `derive(…)` calls
; nothing; names inside an attribute are not references.
(attribute_item) @attribute
(inner_attribute_item) @attribute
; The same inside macro templates and arguments, where `#[…]` stays tokens.
(token_tree "#" . (token_tree) @attribute)
(token_repetition "#" . (token_tree) @attribute)
