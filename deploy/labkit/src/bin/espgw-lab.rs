//! `espgw-lab`: the lab for humans.
//!
//! ```text
//! espgw-lab up PREFIX        build the topology and leave it up
//! espgw-lab down PREFIX      kill whatever runs in it and delete it (idempotent)
//! espgw-lab reap             remove labs whose owning test process is gone
//! espgw-lab demo [PREFIX] [--aggressive] [--aes]
//!                            strongSwan R1 <-> strongSwan R2: initiate, ping, show SAs,
//!                            let tshark judge the wire, tear down
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use espgw_lab::{addr, judge, Capture, IkeMode, Lab, Node, Profile, StrongSwan};

fn usage() -> ExitCode {
    eprintln!(
        "usage: espgw-lab up PREFIX | down PREFIX | reap | demo [PREFIX] [--aggressive] [--aes]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["up", prefix] => up(prefix),
        ["down", prefix] => down(prefix),
        ["reap"] => reap(),
        ["demo", rest @ ..] => demo(rest),
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-lab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn up(prefix: &str) -> espgw_lab::Result<()> {
    let lab = Lab::up(prefix)?;
    for n in Node::ALL {
        println!("{:6} ip netns exec {}", n.name(), lab.ns(n));
    }
    lab.persist();
    println!("lab {prefix} is up; remove it with: deploy/lab.sh down {prefix}");
    Ok(())
}

fn down(prefix: &str) -> espgw_lab::Result<()> {
    let removed = Lab::down(prefix)?;
    if removed.is_empty() {
        println!("no lab named {prefix}");
    } else {
        println!("removed {}", removed.join(" "));
    }
    Ok(())
}

fn reap() -> espgw_lab::Result<()> {
    let removed = Lab::reap_orphans()?;
    if removed.is_empty() {
        println!("no orphaned labs");
    }
    for p in removed {
        println!("removed orphaned lab {p}");
    }
    Ok(())
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn demo(args: &[&str]) -> espgw_lab::Result<()> {
    let mut prefix = Lab::unique_prefix("demo");
    let mut mode = IkeMode::Main;
    let (mut proposal, mut esp) = ("3des-md5-modp1024", "3des-md5");
    for a in args {
        match *a {
            "--aggressive" => mode = IkeMode::Aggressive,
            "--aes" => (proposal, esp) = ("aes128-sha1-modp2048", "aes128-sha1"),
            p if !p.starts_with('-') => prefix = p.to_string(),
            other => return Err(espgw_lab::Error::Invalid(format!("unknown option {other}"))),
        }
    }
    let t0 = Instant::now();
    step(&format!(
        "Building the slides' lab in network namespaces {prefix}-{{hostA,R1,R2,hostB}}"
    ));
    let lab = Lab::up(&prefix)?;
    println!(
        "hostA {} - in0 {} [R1] out0 {} --- out0 {} [R2] in0 {} - hostB {}",
        addr::HOST_A,
        addr::R1_IN,
        addr::R1_OUT,
        addr::R2_OUT,
        addr::R2_IN,
        addr::HOST_B
    );

    step(&format!(
        "Starting strongSwan (charon, userspace ESP) on R1 and R2: IKEv1 {} Mode, {proposal}, ESP {esp}",
        if mode == IkeMode::Main { "Main" } else { "Aggressive" }
    ));
    let profile = |n: Node| Profile::new(n).mode(mode).proposal(proposal).esp(esp);
    let r2 = StrongSwan::start(&lab, Node::R2, profile(Node::R2))?;
    let r1 = StrongSwan::start(&lab, Node::R1, profile(Node::R1))?;
    let shown = profile(Node::R1);
    print!(
        "{}",
        indent(&shown.swanctl_conf().replace(&shown.psk, "********"))
    );
    let cap = Capture::start(&lab, Node::R1, "out0")?;

    step("R1 initiates (swanctl --initiate): phase 1, then Quick Mode");
    r1.initiate()?;
    let sa = r1.wait_established(Duration::from_secs(60))?;
    println!(
        "IKE SA {} {}:{} <-> {}:{}, cookies {}/{}, {} {} {}",
        sa.state,
        sa.local_host,
        sa.local_port,
        sa.remote_host,
        sa.remote_port,
        sa.initiator_spi,
        sa.responder_spi,
        sa.encr_alg,
        sa.integ_alg,
        sa.dh_group
    );

    step(&format!(
        "hostA pings hostB ({}) through the tunnel",
        addr::HOST_B
    ));
    let p = lab.ping(Node::HostA, addr::HOST_B, 5)?;
    println!("{} sent, {} received", p.transmitted, p.received);

    step("Security associations (swanctl --list-sas)");
    for (name, sw) in [("R1", &r1), ("R2", &r2)] {
        println!("-- {name}");
        for ike in sw.list_sas()? {
            for c in &ike.children {
                println!(
                    "   {} {} spi in {:08x} out {:08x} encap={} {} {} pkts in {} out {} ts {:?} === {:?}",
                    c.name,
                    c.state,
                    c.spi_in,
                    c.spi_out,
                    c.encap,
                    c.encr_alg,
                    c.integ_alg,
                    c.packets_in,
                    c.packets_out,
                    c.local_ts,
                    c.remote_ts
                );
            }
        }
    }

    step("tshark judges the R1-R2 link with the keys charon logged");
    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop()?;
    let keys = r1.keys()?;
    let v = judge(&pcap, &keys.esp, &keys.ike)?;
    print!("{}", indent(&v.summary()));
    let esp = v.esp().count();
    let bad = v.bad_esp().len();
    println!(
        "{esp} ESP frames, {bad} not decrypted/authenticated, {} malformed frames",
        v.malformed()
    );

    step("Tearing down (charon, tcpdump, namespaces)");
    drop(r1);
    drop(r2);
    drop(lab);
    println!("done in {:.1}s", t0.elapsed().as_secs_f64());
    if p.received == 0 || bad > 0 || esp == 0 {
        return Err(espgw_lab::Error::Invalid(
            "the demo tunnel did not carry the pings cleanly".into(),
        ));
    }
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
