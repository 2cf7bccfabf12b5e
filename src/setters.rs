//! [`setters!`]: the builder methods that set one field and return the value.

/// `setters! { /// doc  with_name(field: Type); ... }` inside an `impl` block: per
/// entry, `pub fn with_name(mut self, field: Type) -> Self`, which sets `self.field`
/// and returns `self`, with the entry's doc comment.
macro_rules! setters {
    ($($(#[$meta:meta])* $setter:ident($field:ident: $ty:ty);)*) => {
        $(
            $(#[$meta])*
            pub fn $setter(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}
pub(crate) use setters;
