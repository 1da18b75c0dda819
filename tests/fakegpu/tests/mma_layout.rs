//! The emulator's mma.sync fragment layouts against the PTX ISA's tables
//! ("Matrix Fragments for mma.m16n8k8" for .tf32, "Matrix Fragments for
//! mma.m16n8k16 with floating point type" for .bf16): every element of A, B
//! and C is held by exactly one (lane, element), and the lanes the ISA's
//! figures show hold what the figures say. The kernels load fragments with
//! their own code (kernels/mma.cu), so a layout slip in either one makes
//! the tensor-core product on the emulator differ from the CPU's
//! (tests/kernels.rs); this test pins the emulator to the documentation.
use std::collections::HashSet;

// The emulator (a static library) comes with the fake driver crate.
use fakegpu as _;

extern "C" {
    fn fakegpu_mma_fragment(
        shape: i32,
        matrix: std::ffi::c_char,
        lane: i32,
        element: i32,
        row: *mut i32,
        col: *mut i32,
    ) -> i32;
}

const TF32: i32 = 0;
const BF16: i32 = 1;

fn at(shape: i32, matrix: u8, lane: i32, element: i32) -> Option<(i32, i32)> {
    let (mut row, mut col) = (-1, -1);
    // SAFETY: the function only writes the two live locals it is given.
    let r = unsafe {
        fakegpu_mma_fragment(
            shape,
            matrix as std::ffi::c_char,
            lane,
            element,
            &raw mut row,
            &raw mut col,
        )
    };
    (r == 0).then_some((row, col))
}

/// (shape, matrix, rows, cols, elements per lane)
const FRAGMENTS: &[(i32, u8, i32, i32, i32)] = &[
    (TF32, b'a', 16, 8, 4),
    (TF32, b'b', 8, 8, 2),
    (TF32, b'c', 16, 8, 4),
    (BF16, b'a', 16, 16, 8),
    (BF16, b'b', 16, 8, 4),
    (BF16, b'c', 16, 8, 4),
];

#[test]
fn every_element_is_held_by_exactly_one_lane() {
    for &(shape, matrix, rows, cols, per_lane) in FRAGMENTS {
        let mut seen = HashSet::new();
        for lane in 0..32 {
            for e in 0..per_lane {
                let (r, c) = at(shape, matrix, lane, e).unwrap_or_else(|| {
                    panic!(
                        "shape {shape} {} lane {lane} element {e} missing",
                        matrix as char
                    )
                });
                assert!((0..rows).contains(&r) && (0..cols).contains(&c));
                assert!(seen.insert((r, c)), "({r}, {c}) held twice");
            }
            assert_eq!(
                at(shape, matrix, lane, per_lane),
                None,
                "one element too many"
            );
        }
        assert_eq!(seen.len() as i32, rows * cols);
    }
}

#[test]
fn lanes_hold_what_the_ptx_isa_figures_show() {
    // Lane 5: groupID 1, threadID_in_group 1. Lane 30: groupID 7, 2.
    type Case = (i32, u8, i32, &'static [(i32, i32)]);
    let cases: &[Case] = &[
        (TF32, b'a', 5, &[(1, 1), (9, 1), (1, 5), (9, 5)]),
        (TF32, b'a', 30, &[(7, 2), (15, 2), (7, 6), (15, 6)]),
        (TF32, b'b', 5, &[(1, 1), (5, 1)]),
        (TF32, b'b', 30, &[(2, 7), (6, 7)]),
        (TF32, b'c', 5, &[(1, 2), (1, 3), (9, 2), (9, 3)]),
        (
            BF16,
            b'a',
            5,
            &[
                (1, 2),
                (1, 3),
                (9, 2),
                (9, 3),
                (1, 10),
                (1, 11),
                (9, 10),
                (9, 11),
            ],
        ),
        (BF16, b'b', 30, &[(4, 7), (5, 7), (12, 7), (13, 7)]),
        (BF16, b'c', 30, &[(7, 4), (7, 5), (15, 4), (15, 5)]),
    ];
    for &(shape, matrix, lane, expected) in cases {
        let got: Vec<_> = (0..expected.len() as i32)
            .map(|e| at(shape, matrix, lane, e).unwrap())
            .collect();
        assert_eq!(
            got, expected,
            "shape {shape} {} lane {lane}",
            matrix as char
        );
    }
}
