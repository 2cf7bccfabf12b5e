//! The column block of `nn_matmul_rows_subgroup.wgsl`, generated for a number of
//! columns per invocation: each invocation holds `cols` columns of C, each a
//! `Rows32` accumulator, and the block is unrolled field by field (WGSL has no
//! arrays of values in registers that index without spilling, nor generics).

use std::fmt::Write;

/// WGSL for `struct Block`, `struct Columns` and the fns `columns`, `zero_block`,
/// `step` and `store_block` of an invocation holding `cols` columns of C; the
/// kernel file uses them and provides `Rows32`, `column`, `zero_rows`, `fma32`,
/// `store32`, `SUBGROUP_LANES` and the binding `b`.
pub(super) fn column_block(cols: u32) -> String {
    let each = |line: &dyn Fn(u32) -> String| (0..cols).map(line).collect::<String>();
    let mut src = String::new();
    let _ = write!(
        src,
        "// An invocation's accumulators: column c of its block in field c{{c}}.
struct Block {{
{fields}}}

// Offsets in B of an invocation's {cols} columns (clamped into B).
struct Columns {{
{offsets}}}

// The offsets in B of the columns of the invocation whose first column is col0.
fn columns(p: MatmulParams, b_base: u32, col0: u32) -> Columns {{
    return Columns(
{column_calls}    );
}}

// Zero accumulators.
fn zero_block() -> Block {{
    let z = zero_rows();
    return Block({zeros});
}}

// One step of k: acc + a_col x B(k, columns); `b_k` is the offset of row k of B.
fn step(acc: Block, a_col: Rows32, js: Columns, b_k: u32) -> Block {{
    return Block(
{fmas}    );
}}

// Stores the block of the invocation whose first column is col0.
fn store_block(p: MatmulParams, c_base: u32, row0: u32, col0: u32, acc: Block) {{
{stores}}}
",
        fields = each(&|c| format!("    c{c}: Rows32,\n")),
        offsets = each(&|c| format!("    j{c}: u32,\n")),
        column_calls = each(&|c| format!("        column(p, b_base, col0, {c}u),\n")),
        zeros = vec!["z"; cols as usize].join(", "),
        fmas = each(&|c| format!("        fma32(acc.c{c}, a_col, b[js.j{c} + b_k]),\n")),
        stores = each(&|c| format!(
            "    store32(p, c_base, row0, col0 + {c}u * SUBGROUP_LANES, acc.c{c});\n"
        )),
    );
    src
}

#[cfg(test)]
mod tests {
    use super::column_block;

    #[test]
    fn one_field_call_and_store_per_column() {
        let src = column_block(4);
        assert!(src.contains("    c3: Rows32,\n") && !src.contains("c4"));
        assert_eq!(src.matches("column(p, b_base, col0,").count(), 4);
        assert_eq!(src.matches("fma32(").count(), 4);
        assert_eq!(src.matches("store32(").count(), 4);
        assert!(src.contains("acc.c3, a_col, b[js.j3 + b_k]"));
        assert!(src.contains("return Block(z, z, z, z);"));
    }
}
