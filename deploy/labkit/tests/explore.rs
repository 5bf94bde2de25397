use espgw_lab::*;
use std::time::Duration;
#[test]
#[ignore]
fn explore() {
    let lab = Lab::up(&Lab::unique_prefix("explore")).unwrap();
    let r1 = StrongSwan::start(&lab, Node::R1, Profile::new(Node::R1)).unwrap();
    let r2 = StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2)).unwrap();
    let cap = Capture::start(&lab, Node::R1, "out0").unwrap();
    r1.initiate().unwrap();
    r1.wait_established(Duration::from_secs(30)).unwrap();
    println!("{:?}", lab.ping(Node::HostA, addr::HOST_B, 3).unwrap());
    let p = cap.stop().unwrap();
    std::fs::copy(&p, "/tmp/explore.pcap").unwrap();
    std::fs::copy(r1.log_path(), "/tmp/explore-r1.log").unwrap();
    std::fs::copy(r2.log_path(), "/tmp/explore-r2.log").unwrap();
    println!("{:#?}", r1.list_sas().unwrap());
    let k1 = r1.keys().unwrap();
    let k2 = r2.keys().unwrap();
    println!("{k1:#?}\n{k2:#?}");
    let cmd = judge::tshark_command(&p, &k1.esp, &k1.ike);
    println!("{cmd:?}");
    let v = judge(&p, &k1.esp, &k1.ike).unwrap();
    println!("{}", v.summary());
}
