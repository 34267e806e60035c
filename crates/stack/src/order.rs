//! The order components start in, from their `depends_on`: a component comes after everything it
//! depends on, and otherwise keeps its place in the stack file (so the file's order is the tie-break
//! and the result is the same on every run). `down` stops in the reverse of this order: producers
//! first, storage last.

/// Indexes of `names` in start order. `deps[i]` names the components `names[i]` depends on. Fails on
/// a dependency that is not in `names` and on a cycle (naming its members).
pub fn start_order(names: &[String], deps: &[Vec<String>]) -> Result<Vec<usize>, String> {
    let index = |n: &str| names.iter().position(|x| x == n);
    let mut needs: Vec<Vec<usize>> = Vec::with_capacity(names.len());
    for (i, ds) in deps.iter().enumerate() {
        let mut v = Vec::new();
        for d in ds {
            match index(d) {
                Some(j) if j == i => return Err(format!("{} depends on itself", names[i])),
                Some(j) => v.push(j),
                None => {
                    return Err(format!(
                        "{} depends on {d}, which is not a component",
                        names[i]
                    ));
                }
            }
        }
        needs.push(v);
    }
    let mut placed = vec![false; names.len()];
    let mut order = Vec::with_capacity(names.len());
    while order.len() < names.len() {
        let next = (0..names.len()).find(|&i| !placed[i] && needs[i].iter().all(|&j| placed[j]));
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                let stuck: Vec<&str> = (0..names.len())
                    .filter(|&i| !placed[i])
                    .map(|i| names[i].as_str())
                    .collect();
                return Err(format!("dependency cycle among: {}", stuck.join(", ")));
            }
        }
    }
    Ok(order)
}

/// Indexes of `names` in stop order: a component goes only once nothing still running depends on it,
/// and among those the one declared last goes first (producers, declared last, stop first).
pub fn stop_order(names: &[String], deps: &[Vec<String>]) -> Result<Vec<usize>, String> {
    start_order(names, deps)?;
    let index = |n: &str| names.iter().position(|x| x == n);
    let needs: Vec<Vec<usize>> = deps
        .iter()
        .map(|ds| ds.iter().filter_map(|d| index(d)).collect())
        .collect();
    let mut stopped = vec![false; names.len()];
    let mut order = Vec::with_capacity(names.len());
    while order.len() < names.len() {
        let free = |i: usize| (0..names.len()).all(|j| stopped[j] || !needs[j].contains(&i));
        let i = (0..names.len())
            .rev()
            .find(|&i| !stopped[i] && free(i))
            .expect("acyclic");
        stopped[i] = true;
        order.push(i);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(spec: &[(&str, &[&str])]) -> Result<Vec<String>, String> {
        let names: Vec<String> = spec.iter().map(|(n, _)| n.to_string()).collect();
        let deps: Vec<Vec<String>> = spec
            .iter()
            .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
            .collect();
        start_order(&names, &deps).map(|o| o.into_iter().map(|i| names[i].clone()).collect())
    }

    #[test]
    fn dependencies_come_first_and_the_file_order_breaks_ties() {
        let got = order(&[
            ("relay", &["selector", "redis"]),
            ("s3", &[]),
            ("selector", &["s3"]),
            ("redis", &[]),
            ("generator", &[]),
        ])
        .unwrap();
        assert_eq!(got, ["s3", "selector", "redis", "relay", "generator"]);
    }

    #[test]
    fn stop_order_stops_dependents_first_and_the_last_declared_first() {
        let spec: &[(&str, &[&str])] = &[
            ("s3", &[]),
            ("rabbitmq", &[]),
            ("selector", &["s3", "proxy"]),
            ("relay", &["selector", "balancer"]),
            ("generator", &["rabbitmq"]),
            ("proxy", &["s3"]),
            ("balancer", &["selector"]),
        ];
        let names: Vec<String> = spec.iter().map(|(n, _)| n.to_string()).collect();
        let deps: Vec<Vec<String>> = spec
            .iter()
            .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
            .collect();
        let got: Vec<&str> = stop_order(&names, &deps)
            .unwrap()
            .into_iter()
            .map(|i| names[i].as_str())
            .collect();
        assert_eq!(
            got,
            [
                "generator",
                "relay",
                "balancer",
                "selector",
                "proxy",
                "rabbitmq",
                "s3"
            ]
        );
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_errors() {
        let e = order(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]).unwrap_err();
        assert_eq!(e, "dependency cycle among: a, b, c");
        assert!(
            order(&[("a", &["a"])])
                .unwrap_err()
                .contains("depends on itself")
        );
        assert!(
            order(&[("a", &["zz"])])
                .unwrap_err()
                .contains("zz, which is not a component")
        );
    }
}
