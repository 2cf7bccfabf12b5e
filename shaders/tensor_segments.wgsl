// tensor_segments.wgsl: per-segment float sums, for algorithms whose update needs sums
// over parts of a tensor (AdamP's and SGDP's rows). A segment is a contiguous run of
// `seg_len` elements of a tensor (TensorEntry.seg_len; 0: none): segment i holds
// elements [i * seg_len, (i + 1) * seg_len). The plan keeps a segmented tensor's blocks
// short enough to touch at most MAX_PIECES segments (src/optim/plan.rs); the part of a
// block inside one segment is a piece.
//
// One mechanism with the per-tensor sums: a measuring pass sums per block, a
// per-tensor pass sums the blocks in block order. Records in `partials`
// (BlockPartial), after the blocks' own:
//   pieces:    MAX_PIECES per block from step.piece_base: record
//              piece_base + global * MAX_PIECES + j holds the block's sums over its j-th
//              piece (a fixed order over the workgroup); the block's record j = 0 also
//              holds its first segment (`first`) and its number of pieces (`pieces`)
//   segments:  two per segment from TensorEntry.first_segment: 2i the segment's sums
//              (segment_total: its pieces in block order), 2i + 1 what the algorithm
//              resolves from them
// Deterministic for a given plan.
//
// Every pass walks a block piece by piece: the piece's span is computed once, and
// each invocation visits the vec4s that overlap it with the lanes outside it masked
// off, so the per-vec4 work has no segment arithmetic, no branch on segments and no
// per-lane lookup (which on a CPU adapter cost more than the memory traffic). A vec4
// that straddles two pieces is visited once per piece, by the same invocation
// (invocation lid always handles the block's vec4s k * WG_SIZE + lid), so the update's
// writes of the two visits cannot race. A tensor without segments is one piece.
//
// Entry points (the per-tensor passes are the algorithm's: they resolve the sums):
//   measure_segments: round 1, per block: the pieces of segment_terms; flags NaN/inf
//   count_segments:   round 2 (caution), per block: counts the lanes whose caution
//                     pair agrees (the block's count) and the pieces of masked_terms
//   update_segments:  the update, each piece with its segment's resolved record in
//                     its StepContext (segment_sums, segment_flag)
// Round 2 and the update walk a block of a tensor whose records do not matter
// (segment_records_used) as one piece.
//
// The algorithm part supplies:
//   segment_terms(at, g, valid, c: StepContext) -> mat4x4<f32>
//       round 1: column i = term i of the four lanes (lanes outside `valid` are
//       discarded)
//   masked_terms(at, g, valid, c: StepContext) -> MaskedTerms
//       round 2: the lanes' terms and how many valid lanes agree
//   segment_records_used(c: StepContext) -> bool
//       after round 1: whether the tensor's resolved records matter (round 2 sums
//       its terms, the update reads each piece's record); the same for every piece
//       of a tensor. false: round 2 only counts, and round 2 and the update walk
//       each block as one piece with its first piece's context; round 2 stores no
//       piece sums (the records keep round 1's: the algorithm's round-2 per-tensor
//       pass skips the tensor)
// Generated constants (u32): MAX_PIECES, PIECE_BATCH (pieces summed at once by the
// workgroup: PIECE_BATCH * WG_SIZE vec4s of workgroup memory). `partials` is declared by
// optim_step.wgsl.

struct MaskedTerms {
    terms: mat4x4<f32>,  // column i = term i of the four lanes
    agree: u32,          // lanes (inside the piece) whose caution pair agrees
}

// The segments a block touches: the first and how many (0: the tensor has none, or the
// workgroup has no block).
struct BlockPieces {
    first: u32,
    count: u32,
}

fn block_pieces(blk: Block, seg_len: u32) -> BlockPieces {
    if seg_len == 0u || blk.len == 0u {
        return BlockPieces(0u, 0u);
    }
    let first = blk.elem / seg_len;
    return BlockPieces(first, (blk.elem + blk.len - 1u) / seg_len - first + 1u);
}

// The elements [lo, hi) of a block (offsets from its start) inside one piece.
struct Span {
    lo: u32,
    hi: u32,
}

// The span of segment `seg` in `blk` (the whole block when the tensor has no segments).
fn piece_span(blk: Block, seg_len: u32, seg: u32) -> Span {
    if seg_len == 0u {
        return Span(0u, blk.len);
    }
    let start = max(seg * seg_len, blk.elem);
    let end = min((seg + 1u) * seg_len, blk.elem + blk.len);
    return Span(start - blk.elem, end - blk.elem);
}

// The span of piece j of a block walked as `pieces` (count 0: the whole block).
fn walked_span(blk: Block, seg_len: u32, pieces: BlockPieces, j: u32) -> Span {
    return piece_span(blk, select(0u, seg_len, pieces.count != 0u), pieces.first + j);
}

// The first and the end k of invocation lid's vec4s (k * WG_SIZE + lid) that overlap
// `span`.
fn span_steps(span: Span, lid: u32) -> vec2<u32> {
    let first = span.lo / 4u;
    let end = (span.hi + 3u) / 4u;
    return vec2<u32>(first + WG_SIZE - 1u - lid, end + WG_SIZE - 1u - lid) / WG_SIZE;
}

// Invocation lid's k-th vec4 of a block, its lanes valid inside `span`.
fn span_lane(blk: Block, k: u32, lid: u32, span: Span) -> Lane {
    let e = block_elem(k, lid);
    let lanes = vec4<u32>(e) + vec4<u32>(0u, 1u, 2u, 3u);
    return Lane(block_at(blk, e), (lanes >= vec4<u32>(span.lo)) & (lanes < vec4<u32>(span.hi)));
}

// `c` for the piece of segment `seg` of tensor `t` in a pass after the segments are
// resolved: its resolved record's sums and flag (zeros without segments).
fn piece_context(c: StepContext, t: TensorEntry, seg: u32) -> StepContext {
    var out = c;
    if t.seg_len != 0u {
        let r = partials[segment_record(t.first_segment, seg) + 1u];
        out.segment_sums = r.sums;
        out.segment_flag = r.flag;
    }
    return out;
}

// The record of piece j of the block numbered `global`.
fn piece_record(global: u32, j: u32) -> u32 {
    return step.piece_base + global * MAX_PIECES + j;
}

// The record of segment i's sums in a tensor whose first segment record is `first`
// (`+ 1u`: its resolved record).
fn segment_record(first: u32, i: u32) -> u32 {
    return first + 2u * i;
}

// The columns of `terms` with the lanes outside `valid` set to zero.
fn valid_terms(terms: mat4x4<f32>, valid: vec4<bool>) -> mat4x4<f32> {
    let zero = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(zero, terms[0], valid),
        select(zero, terms[1], valid),
        select(zero, terms[2], valid),
        select(zero, terms[3], valid),
    );
}

// One invocation's share of a piece: its terms summed over the lanes (term i in
// component i) and, in round 2, its count of agreeing lanes.
struct PieceShare {
    sums: vec4<f32>,
    agree: u32,
}

fn piece_share(m: MeasuringBlock, span: Span, c: StepContext, lid: u32, masked: bool) -> PieceShare {
    var acc = mat4x4<f32>();
    var agree = 0u;
    let steps = span_steps(span, lid);
    let with_terms = !masked || segment_records_used(c);
    for (var k = steps.x; k < steps.y; k++) {
        let lane = span_lane(m.blk, k, lid, span);
        if masked {
            // Round 1 has flagged the non-finite gradients: a plain load.
            let g = step_grad(lane, load_grad(lane.at.grad, lane.valid) * m.clip, c);
            let mt = masked_terms(lane.at, g, lane.valid, c);
            agree += mt.agree;
            if with_terms {
                acc += valid_terms(mt.terms, lane.valid);
            }
        } else {
            let g = step_grad(lane, lane_grad(lane) * m.clip, c);
            acc += valid_terms(segment_terms(lane.at, g, lane.valid, c), lane.valid);
        }
    }
    let one = vec4<f32>(1.0);
    return PieceShare(vec4<f32>(dot(acc[0], one), dot(acc[1], one), dot(acc[2], one), dot(acc[3], one)), agree);
}

// One batch's scratch: PIECE_BATCH rows of WG_SIZE invocations.
var<workgroup> piece_scratch: array<vec4<f32>, PIECE_BATCH * WG_SIZE>;

// Values one invocation adds in the first level of a row's sum: each row is summed in
// two levels (PIECE_CHUNKS chunk sums, then the row's), two barriers instead of a
// tree's log2(WG_SIZE) (a GPU workgroup of 256 sums one piece at a time).
const PIECE_FOLD: u32 = 16u;
// Chunk sums per row: chunk c holds the row's invocations c + i * PIECE_CHUNKS.
const PIECE_CHUNKS: u32 = (WG_SIZE + PIECE_FOLD - 1u) / PIECE_FOLD;

// Level 1: each chunk's sum, in place of the chunk's first value (row r's chunk c in
// slot r * WG_SIZE + c; consecutive invocations read consecutive slots).
fn fold_piece_chunks(lid: u32) {
    for (var x = lid; x < PIECE_BATCH * PIECE_CHUNKS; x += WG_SIZE) {
        let base = (x / PIECE_CHUNKS) * WG_SIZE;
        let c = x % PIECE_CHUNKS;
        var sum = piece_scratch[base + c];
        for (var i = c + PIECE_CHUNKS; i < WG_SIZE; i += PIECE_CHUNKS) {
            sum += piece_scratch[base + i];
        }
        piece_scratch[base + c] = sum;
    }
}

// Sums the batch of pieces from j0 (rows of piece_scratch) over the workgroup and
// stores each in the block's records.
fn store_piece_batch(slot: u32, j0: u32, pieces: BlockPieces, lid: u32) {
    workgroupBarrier();
    var row_len = WG_SIZE;
    if PIECE_CHUNKS > 1u {
        fold_piece_chunks(lid);
        workgroupBarrier();
        row_len = PIECE_CHUNKS;
    }
    let j = j0 + lid;
    if lid < PIECE_BATCH && j < pieces.count {
        var sum = vec4<f32>(0.0);
        for (var c = 0u; c < row_len; c++) {
            sum += piece_scratch[lid * WG_SIZE + c];
        }
        let r = piece_record(slot, j);
        partials[r].sums = sum;
        if j == 0u {
            partials[r].first = pieces.first;
            partials[r].pieces = pieces.count;
        }
    }
    workgroupBarrier();
}

// Whether block b of tensor t reaches segment i (its last segment is i or later).
fn block_reaches(t: TensorEntry, b: u32, i: u32) -> bool {
    let r = piece_record(t.first_block + b, 0u);
    return partials[r].first + partials[r].pieces > i;
}

// The first block of tensor t that reaches segment i. The plan cuts a segmented tensor
// into blocks of segment_block_len (src/optim/plan.rs) but for one shorter block at
// each dispatch boundary, so the block holding the segment's first element in that
// cut is at most a few blocks off; the walk from there needs no search over the
// tensor's blocks.
fn first_block_reaching(t: TensorEntry, i: u32) -> u32 {
    let block_len = clamp((MAX_PIECES - 1u) * t.seg_len / 4u * 4u, 4u, 4u * BLOCK_VEC4);
    var b = min(i * t.seg_len / block_len, t.num_blocks - 1u);
    while b > 0u && block_reaches(t, b - 1u, i) {
        b -= 1u;
    }
    while b < t.num_blocks && !block_reaches(t, b, i) {
        b += 1u;
    }
    return b;
}

// The sum of segment i of tensor t: its pieces in block order.
fn segment_total(t: TensorEntry, i: u32) -> vec4<f32> {
    var total = vec4<f32>(0.0);
    for (var b = first_block_reaching(t, i); b < t.num_blocks; b++) {
        let first = partials[piece_record(t.first_block + b, 0u)].first;
        if first > i {
            break;
        }
        total += partials[piece_record(t.first_block + b, i - first)].sums;
    }
    return total;
}

// Round 2's switch for the block's tensor (segment_records_used of its first
// piece), uniform over the workgroup.
var<workgroup> block_records_used: u32;

fn uniform_records_used(c: StepContext, lid: u32) -> bool {
    if lid == 0u {
        block_records_used = u32(segment_records_used(c));
    }
    return workgroupUniformLoad(&block_records_used) != 0u;
}

// One block of a measuring round: `masked` is round 2. Round 2 takes the block of a
// tensor whose terms it does not sum as one piece and stores no piece sums.
fn measure_pieces(group: Workgroup, lid: u32, masked: bool) {
    let m = measuring_block(group);
    var pieces = block_pieces(m.blk, m.t.seg_len);
    var c = m.c;
    if masked {
        c = piece_context(m.c, m.t, pieces.first);
        if !uniform_records_used(c, lid) {
            pieces.count = 0u;
        }
    }
    var agree = 0u;
    for (var j = 0u; j < max(pieces.count, 1u); j++) {
        let span = walked_span(m.blk, m.t.seg_len, pieces, j);
        if masked && pieces.count != 0u {
            c = piece_context(m.c, m.t, pieces.first + j);
        }
        let share = piece_share(m, span, c, lid, masked);
        agree += share.agree;
        if pieces.count != 0u {
            let row = j % PIECE_BATCH;
            piece_scratch[row * WG_SIZE + lid] = share.sums;
            if row == PIECE_BATCH - 1u || j + 1u == pieces.count {
                store_piece_batch(m.blk.global, j - row, pieces, lid);
            }
        }
    }
    flag_loaded_nonfinite();
    if masked {
        add_block_count(agree, m.blk.global, lid);
    }
}

@compute @workgroup_size(WG_SIZE)
fn measure_segments(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    measure_pieces(group, lid, false);
}

@compute @workgroup_size(WG_SIZE)
fn count_segments(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    measure_pieces(group, lid, true);
}

@compute @workgroup_size(WG_SIZE)
fn update_segments(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    let u = update_block(group);
    if !u.live {
        return;
    }
    var pieces = block_pieces(u.blk, u.t.seg_len);
    var c = piece_context(u.c, u.t, pieces.first);
    if !segment_records_used(c) {
        pieces.count = 0u;
    }
    for (var j = 0u; j < max(pieces.count, 1u); j++) {
        let span = walked_span(u.blk, u.t.seg_len, pieces, j);
        if pieces.count != 0u {
            c = piece_context(u.c, u.t, pieces.first + j);
        }
        let steps = span_steps(span, lid);
        for (var k = steps.x; k < steps.y; k++) {
            let lane = span_lane(u.blk, k, lid, span);
            let g = step_grad(lane, load_grad(lane.at.grad, lane.valid) * u.clip, c);
            step_vec4(lane.at, g, lane.valid, u.t.scale, c);
        }
    }
}
