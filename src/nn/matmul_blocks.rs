//! The register blocks of the CPU matmul kernels (`nn_matmul_rows.wgsl`,
//! `nn_matmul_rows_subgroup.wgsl`), generated for their sizes: the rows block (a run
//! of rows of one column, in vec4 fields) for a number of rows, and the column block
//! of `rows_subgroup` for a number of columns per invocation. Both are unrolled field
//! by field (WGSL has no arrays of values in registers that index without spilling,
//! nor generics).

/// `line(i)` for every `i` in `0..n`, concatenated.
fn each(n: u32, line: impl Fn(u32) -> String) -> String {
    (0..n).map(line).collect()
}

/// WGSL for `struct Rows{rows}` (`rows` consecutive rows of one column of C or of
/// A, a multiple of 4: field `ri` holds rows `4i..4i + 4`) and its fns `zero_rows`,
/// `fma{rows}` (a multiply-add by one value of B) and `store{rows}` (into a column
/// of C); the kernel file provides `MatmulParams` and `store_c`.
pub(super) fn rows_block(rows: u32) -> String {
    let fields = rows / 4;
    format!(
        "// {rows} consecutive rows of one column of C (or of A): r0 holds rows 0-3, r1 4-7, ...
struct Rows{rows} {{
{members}}}

// {rows} zero rows.
fn zero_rows() -> Rows{rows} {{
    let z = vec4<f32>(0.0);
    return Rows{rows}({zeros});
}}

// acc + a_col * bv.
fn fma{rows}(acc: Rows{rows}, a_col: Rows{rows}, bv: f32) -> Rows{rows} {{
    let s = vec4<f32>(bv);
    return Rows{rows}(
{fmas}    );
}}

// Stores {rows} rows of column gj of C.
fn store{rows}(p: MatmulParams, c_base: u32, row0: u32, gj: u32, acc: Rows{rows}) {{
    for (var i = 0u; i < 4u; i++) {{
{stores}    }}
}}
",
        members = each(fields, |r| format!("    r{r}: vec4<f32>,\n")),
        zeros = vec!["z"; fields as usize].join(", "),
        fmas = each(fields, |r| format!(
            "        fma(a_col.r{r}, s, acc.r{r}),\n"
        )),
        stores = each(fields, |r| {
            let row = match r {
                0 => "row0".to_string(),
                _ => format!("row0 + {}u", 4 * r),
            };
            format!("        store_c(p, c_base, {row} + i, gj, acc.r{r}[i]);\n")
        }),
    )
}

/// WGSL for `struct Block`, `struct Columns` and the fns `columns`, `zero_block`,
/// `step` and `store_block` of a `rows_subgroup` invocation holding `cols` columns
/// of C, each a `Rows32` accumulator; the kernel file uses them and provides
/// `column`, `SUBGROUP_LANES` and the binding `b`, [`rows_block`]`(32)` the rest.
pub(super) fn column_block(cols: u32) -> String {
    format!(
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
        fields = each(cols, |c| format!("    c{c}: Rows32,\n")),
        offsets = each(cols, |c| format!("    j{c}: u32,\n")),
        column_calls = each(cols, |c| format!(
            "        column(p, b_base, col0, {c}u),\n"
        )),
        zeros = vec!["z"; cols as usize].join(", "),
        fmas = each(cols, |c| format!(
            "        fma32(acc.c{c}, a_col, b[js.j{c} + b_k]),\n"
        )),
        stores = each(cols, |c| format!(
            "    store32(p, c_base, row0, col0 + {c}u * SUBGROUP_LANES, acc.c{c});\n"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::{column_block, rows_block};

    #[test]
    fn one_vec4_field_multiply_add_and_store_per_four_rows() {
        let src = rows_block(16);
        assert!(src.contains("struct Rows16 {\n    r0: vec4<f32>,\n"));
        assert!(src.contains("    r3: vec4<f32>,\n}") && !src.contains("r4"));
        assert!(src.contains("return Rows16(z, z, z, z);"));
        assert!(src.contains("fn fma16(acc: Rows16, a_col: Rows16, bv: f32) -> Rows16 {"));
        assert_eq!(src.matches("fma(a_col.r").count(), 4);
        assert!(src.contains("fma(a_col.r3, s, acc.r3),\n"));
        assert!(src.contains("store_c(p, c_base, row0 + i, gj, acc.r0[i]);"));
        assert!(src.contains("store_c(p, c_base, row0 + 12u + i, gj, acc.r3[i]);"));
        assert_eq!(src.matches("store_c(").count(), 4);
        assert_eq!(rows_block(32).matches("store_c(").count(), 8);
    }

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
