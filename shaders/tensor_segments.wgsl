// tensor_segments.wgsl: per-segment float sums, for algorithms whose update needs sums
// over parts of a tensor (AdamP's and SGDP's rows). A segment is a contiguous run of
// `seg_len` elements of a tensor (TensorEntry.seg_len; 0: none): segment i holds
// elements [i * seg_len, (i + 1) * seg_len). The plan keeps a segmented tensor's blocks
// short enough to touch at most MAX_PIECES segments (src/optim/plan.rs).
//
// One mechanism with the per-tensor sums: a measuring pass sums per block, a
// per-tensor pass sums the blocks in block order. Records in `partials`
// (BlockPartial), after the blocks' own:
//   pieces:    MAX_PIECES per block from step.piece_base: record
//              piece_base + global * MAX_PIECES + j holds the block's sums over its j-th
//              segment (a fixed tree over the workgroup); the block's record j = 0 also
//              holds its first segment (`first`) and its number of pieces (`pieces`)
//   segments:  two per segment from TensorEntry.first_segment: 2i the segment's sums
//              (segment_total: its pieces in block order), 2i + 1 what the algorithm
//              resolves from them
// Deterministic for a given plan.
//
// Entry points (the per-tensor passes are the algorithm's: they resolve the sums):
//   measure_segments: round 1, per block: the pieces of segment_terms; flags NaN/inf
//   count_segments:   round 2 (caution), per block: counts the lanes whose caution
//                     pair agrees (the block's count) and the pieces of masked_terms
//
// The algorithm part supplies:
//   segment_terms(at, g, valid, c: StepContext) -> mat4x4<f32>
//       round 1: column l = lane l's four terms
//   masked_terms(at, g, valid, c: StepContext) -> MaskedTerms
//       round 2: the lanes' terms and how many lanes agree
// Generated constants (u32): MAX_PIECES, PIECE_BATCH (pieces summed by one workgroup
// tree: PIECE_BATCH * WG_SIZE vec4s of workgroup memory). `partials` is declared by
// optim_step.wgsl.
//
// Cost on a CPU adapter (where integer division, per-lane indexing of private arrays and
// workgroup barriers are each slow): an invocation's segment comes from its previous
// vec4's without a division (segment_position), its terms accumulate in one run per
// segment (add_lane_terms), and one tree sums PIECE_BATCH pieces at once (store_pieces).

struct MaskedTerms {
    terms: mat4x4<f32>,  // column l = lane l's terms
    agree: u32,          // lanes (inside the tensor) whose caution pair agrees
}

// This invocation's sums per piece of its block.
var<private> piece_acc: array<vec4<f32>, MAX_PIECES>;
// The sums of the invocation's current run (consecutive lanes of one piece) and that
// piece: add_lane_terms adds a run to piece_acc when the next piece starts.
var<private> run_acc: vec4<f32>;
var<private> run_piece: u32;
// The invocation's last segment_position: (element, segment, offset, seg_len);
// seg_len 0 (the initial value): none yet.
var<private> seg_memo: vec4<u32>;
// One tree's scratch: PIECE_BATCH rows of WG_SIZE invocations.
var<workgroup> piece_scratch: array<vec4<f32>, PIECE_BATCH * WG_SIZE>;

// The segment of element `elem` (segments of `seg_len` > 0 elements) and its offset in
// it. A block's loop moves an invocation forward by 4 * WG_SIZE elements at a time, so
// when that is less than a segment the position follows from the previous one without
// a division.
fn segment_position(elem: u32, seg_len: u32) -> vec2<u32> {
    let ahead = elem - seg_memo.x;
    var pos: vec2<u32>;
    if seg_memo.w == seg_len && elem >= seg_memo.x && ahead < seg_len {
        let off = seg_memo.z + ahead;
        let next = off >= seg_len;
        pos = vec2<u32>(seg_memo.y + select(0u, 1u, next), select(off, off - seg_len, next));
    } else {
        let q = elem / seg_len;
        pos = vec2<u32>(q, elem - q * seg_len);
    }
    seg_memo = vec4<u32>(elem, pos, seg_len);
    return pos;
}

// The segment of each lane of the vec4 that starts at element `elem`.
fn lane_segments(elem: u32, seg_len: u32) -> vec4<u32> {
    let pos = segment_position(elem, seg_len);
    let off = vec4<u32>(pos.y) + vec4<u32>(0u, 1u, 2u, 3u);
    if seg_len >= 4u {
        // off < 2 * seg_len: a lane is in the segment or the next one.
        return vec4<u32>(pos.x) + select(vec4<u32>(0u), vec4<u32>(1u), off >= vec4<u32>(seg_len));
    }
    return vec4<u32>(pos.x) + off / vec4<u32>(seg_len);
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

// The segment record of each lane of the vec4 at `at` (its resolved record when
// `resolved`).
fn lane_records(at: At, c: StepContext, resolved: bool) -> vec4<u32> {
    let segs = lane_segments(at.elem, c.seg_len);
    return vec4<u32>(c.first_segment) + 2u * segs + select(0u, 1u, resolved);
}

// Adds each valid lane's terms to the run of its piece (the block's first segment is
// `first_seg`), closing the current run when a lane starts another piece.
fn add_lane_terms(terms: mat4x4<f32>, at: At, valid: vec4<bool>, seg_len: u32, first_seg: u32) {
    let piece = lane_segments(at.elem, seg_len) - vec4<u32>(first_seg);
    if all((piece == vec4<u32>(run_piece)) | !valid) {
        let zero = vec4<f32>(0.0);
        run_acc += select(zero, terms[0], valid.x) + select(zero, terms[1], valid.y)
            + select(zero, terms[2], valid.z) + select(zero, terms[3], valid.w);
        return;
    }
    for (var l = 0u; l < 4u; l++) {
        if valid[l] {
            if piece[l] != run_piece {
                close_run();
                run_piece = piece[l];
            }
            run_acc += terms[l];
        }
    }
}

// Adds the current run to its piece and starts an empty one.
fn close_run() {
    piece_acc[run_piece] += run_acc;
    run_acc = vec4<f32>(0.0);
}

// Sums every piece over the workgroup, PIECE_BATCH pieces per tree, and stores it in
// the block's records.
fn store_pieces(slot: u32, first_seg: u32, n_pieces: u32, lid: u32) {
    close_run();
    for (var j0 = 0u; j0 < n_pieces; j0 += PIECE_BATCH) {
        for (var j = 0u; j < PIECE_BATCH; j++) {
            piece_scratch[j * WG_SIZE + lid] = piece_acc[min(j0 + j, MAX_PIECES - 1u)];
        }
        workgroupBarrier();
        for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {
            if lid < stride {
                for (var j = 0u; j < PIECE_BATCH; j++) {
                    piece_scratch[j * WG_SIZE + lid] += piece_scratch[j * WG_SIZE + lid + stride];
                }
            }
            workgroupBarrier();
        }
        let j = j0 + lid;
        if lid < PIECE_BATCH && j < n_pieces {
            let r = piece_record(slot, j);
            partials[r].sums = piece_scratch[lid * WG_SIZE];
            if j == 0u {
                partials[r].first = first_seg;
                partials[r].pieces = n_pieces;
            }
        }
        workgroupBarrier();
    }
}

// The sum of segment i of tensor t: its pieces in block order.
fn segment_total(t: TensorEntry, i: u32) -> vec4<f32> {
    // The first block whose last segment is i or later.
    var lo = 0u;
    var hi = t.num_blocks;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        let r = piece_record(t.first_block + mid, 0u);
        if partials[r].first + partials[r].pieces <= i {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    var total = vec4<f32>(0.0);
    for (var b = lo; b < t.num_blocks; b++) {
        let first = partials[piece_record(t.first_block + b, 0u)].first;
        if first > i {
            break;
        }
        total += partials[piece_record(t.first_block + b, i - first)].sums;
    }
    return total;
}

// One block of a measuring round: `masked` is round 2.
fn measure_pieces(group: Workgroup, lid: u32, masked: bool) {
    let m = measuring_block(group);
    let seg_len = m.t.seg_len;
    var agree = 0u;
    var first_seg = 0u;
    var n_pieces = 0u;
    if m.in_range && seg_len != 0u {
        first_seg = m.blk.elem / seg_len;
        n_pieces = (m.blk.elem + m.blk.len - 1u) / seg_len - first_seg + 1u;
    }
    for (var k = 0u; k < VEC_PER_THREAD; k++) {
        let x = grad_lane(m.blk, k, lid);
        if x.lane.valid.x {
            let g = step_grad(x.lane, x.g * m.clip, m.c);
            var terms: mat4x4<f32>;
            if masked {
                let mt = masked_terms(x.lane.at, g, x.lane.valid, m.c);
                agree += mt.agree;
                terms = mt.terms;
            } else {
                terms = segment_terms(x.lane.at, g, x.lane.valid, m.c);
            }
            if n_pieces != 0u {
                add_lane_terms(terms, x.lane.at, x.lane.valid, seg_len, first_seg);
            }
        }
    }
    flag_loaded_nonfinite();
    if masked {
        add_block_count(agree, m.blk.global, lid);
    }
    store_pieces(m.blk.global, first_seg, n_pieces, lid);
}

@compute @workgroup_size(WG_SIZE)
fn measure_segments(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    measure_pieces(group, lid, false);
}

@compute @workgroup_size(WG_SIZE)
fn count_segments(group: Workgroup, @builtin(local_invocation_index) lid: u32) {
    measure_pieces(group, lid, true);
}
