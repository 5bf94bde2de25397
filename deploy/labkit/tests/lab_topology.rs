//! The lab alone: addresses, forwarding, isolation, teardown.

use espgw_lab::{addr, lab::list_netns, Lab, Node};

#[test]
fn topology_forwards_and_tears_down() {
    let before = list_netns().unwrap();
    let prefix = Lab::unique_prefix("topo");
    let mut lab = Lab::up(&prefix).unwrap();
    let now = list_netns().unwrap();
    for n in Node::ALL {
        assert!(now.contains(&lab.ns(n)), "{} missing", lab.ns(n));
    }
    // Addresses as in the slides.
    let r1 = lab.run(Node::R1, &["ip", "-br", "-4", "addr"]).unwrap();
    assert!(
        r1.contains("172.16.172.10/28") && r1.contains("10.1.1.1/24"),
        "{r1}"
    );
    assert_eq!(
        lab.run(Node::R2, &["sysctl", "-n", "net.ipv4.ip_forward"])
            .unwrap()
            .trim(),
        "1"
    );
    // Hop by hop, then end to end (plain forwarding: no tunnel yet).
    assert_eq!(lab.ping(Node::HostA, addr::R1_IN, 2).unwrap().received, 2);
    assert_eq!(lab.ping(Node::R1, addr::R2_OUT, 2).unwrap().received, 2);
    let s = lab.ping(Node::HostA, addr::HOST_B, 3).unwrap();
    assert_eq!((s.transmitted, s.received), (3, 3), "{s:?}");
    // A tracked process dies with the lab.
    let mut sleeper = lab.spawn(Node::R2, &["sleep", "600"]).unwrap();
    let pid = sleeper.pid();
    assert!(sleeper.is_running());
    lab.teardown().unwrap();
    lab.teardown().unwrap(); // idempotent
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists() || !sleeper.is_running()
    );
    drop(sleeper);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let after = list_netns().unwrap();
    for n in Node::ALL {
        assert!(!after.contains(&format!("{prefix}-{}", n.name())));
    }
    assert!(after.is_subset(&before.union(&after).cloned().collect()));
}

#[test]
fn down_by_prefix_kills_and_removes() {
    let prefix = Lab::unique_prefix("down");
    let lab = Lab::up(&prefix).unwrap();
    let ns = lab.ns(Node::R1);
    // A process the lab does not track, started inside the namespace.
    let mut stray = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "sleep", "600"])
        .spawn()
        .unwrap();
    let kept = lab.persist();
    let removed = Lab::down(&kept).unwrap();
    assert_eq!(removed.len(), 4);
    let st = stray.wait().unwrap();
    assert!(!st.success());
    assert!(!list_netns().unwrap().contains(&ns));
    assert!(Lab::down(&kept).unwrap().is_empty());
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let prefix = Lab::unique_prefix("panic");
    let r = std::panic::catch_unwind(|| {
        let lab = Lab::up(&prefix).unwrap();
        let _p = lab.spawn(Node::HostB, &["sleep", "600"]).unwrap();
        panic!("deliberate");
    });
    assert!(r.is_err());
    let after = list_netns().unwrap();
    assert!(
        after.iter().all(|n| !n.starts_with(&format!("{prefix}-"))),
        "{after:?}"
    );
}

#[test]
fn exec_returns_although_a_background_child_holds_the_pipes() {
    let lab = Lab::up(&Lab::unique_prefix("bgpipe")).unwrap();
    let t = std::time::Instant::now();
    let out = lab
        .exec(Node::R1, &["sh", "-c", "echo hi; sleep 300 &"])
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t.elapsed()
    );
}
