//! `torch_randperm` against permutations torch 2.4.1 produced (tests/reference/randperm_reference.py).

mod common;

use dept_data::randperm::torch_randperm;

#[test]
fn randperm_matches_torch() {
    let cases = common::golden("randperm_torch.json");
    let cases = cases.as_array().expect("list of cases");
    assert!(cases.len() >= 40);
    for case in cases {
        let seed = case["seed"].as_u64().unwrap();
        let n = case["n"].as_u64().unwrap() as usize;
        let ours = torch_randperm(n, seed);
        if let Some(perm) = case.get("perm") {
            assert_eq!(ours, common::numbers(perm), "seed {seed} n {n}");
        } else {
            assert_eq!(
                ours[..20],
                common::numbers(&case["head"])[..],
                "head, seed {seed} n {n}"
            );
            assert_eq!(
                ours[n - 20..],
                common::numbers(&case["tail"])[..],
                "tail, seed {seed} n {n}"
            );
            let modulus: u128 = (1 << 61) - 1;
            let checksum = ours.iter().enumerate().fold(0u128, |acc, (i, &p)| {
                (acc + (i as u128 + 1) * p as u128) % modulus
            });
            assert_eq!(
                checksum.to_string(),
                case["checksum"].as_str().unwrap(),
                "seed {seed} n {n}"
            );
        }
    }
}
