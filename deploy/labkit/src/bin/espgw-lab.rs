//! `espgw-lab`: the lab for humans.
//!
//! ```text
//! espgw-lab up PREFIX        build the topology and leave it up
//! espgw-lab down PREFIX      kill whatever runs in it and delete it (idempotent)
//! espgw-lab reap             remove labs whose owning test process is gone
//! espgw-lab demo [PREFIX] [--peer strongswan|espgw]
//!                            R1 = espgw (espgw-control + espgw-dataplane, the slides'
//!                            configuration from deploy/configs/), R2 = strongSwan (ESP in
//!                            UDP 4500) or espgw (raw ESP): hostA's first ping starts the
//!                            negotiation (debug output shown), ping, iperf3, show crypto
//!                            isakmp/ipsec sa and crypto map, tshark judges the R1-R2 link
//!                            with espgw's key log, tear down.
//! espgw-lab demo [PREFIX] --swan-only [--aggressive] [--aes]
//!                            strongSwan R1 <-> strongSwan R2: initiate, ping, show SAs,
//!                            let tshark judge the wire, tear down.
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use espgw_lab::{
    addr, judge, Capture, EspgwBins, EspgwOptions, EspgwRouter, IkeMode, Lab, LabOptions, Node,
    Profile, StrongSwan, Wire,
};

fn usage() -> ExitCode {
    eprintln!(
        "usage: espgw-lab up PREFIX | down PREFIX | reap | demo [PREFIX] [--peer strongswan|espgw] | demo [PREFIX] --swan-only [--aggressive] [--aes]"
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

thread_local! {
    /// When the step being shown began.
    static STEP_START: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Ends the step being shown (says how long it took) and starts the next one.
fn step(what: &str) {
    step_done();
    println!("\n==> {what}");
    STEP_START.with(|s| s.set(Some(Instant::now())));
}

/// Says how long the step being shown took.
fn step_done() {
    if let Some(t) = STEP_START.with(|s| s.take()) {
        println!("    ({:.1} s)", t.elapsed().as_secs_f64());
    }
}

fn demo(args: &[&str]) -> espgw_lab::Result<()> {
    let mut prefix = Lab::unique_prefix("demo");
    let mut mode = IkeMode::Main;
    let (mut proposal, mut esp) = ("3des-md5-modp1024", "3des-md5");
    let mut swan_only = false;
    let mut peer = Peer::StrongSwan;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--aggressive" => mode = IkeMode::Aggressive,
            "--aes" => (proposal, esp) = ("aes128-sha1-modp2048", "aes128-sha1"),
            "--swan-only" => swan_only = true,
            "--espgw" => {} // R1 is espgw: the default now
            "--peer" => {
                peer = match it.next().copied() {
                    Some("espgw") => Peer::Espgw,
                    Some("strongswan") => Peer::StrongSwan,
                    other => {
                        return Err(espgw_lab::Error::Invalid(format!(
                            "--peer espgw|strongswan, not {other:?}"
                        )))
                    }
                }
            }
            "--peer=espgw" => peer = Peer::Espgw,
            "--peer=strongswan" => peer = Peer::StrongSwan,
            p if !p.starts_with('-') => prefix = p.to_string(),
            other => return Err(espgw_lab::Error::Invalid(format!("unknown option {other}"))),
        }
    }
    if !swan_only && (mode == IkeMode::Aggressive || esp != "3des-md5") {
        return Err(espgw_lab::Error::Invalid(
            "--aggressive and --aes go with --swan-only (the espgw demo runs the slides' configuration)".into(),
        ));
    }
    let t0 = Instant::now();
    step(&format!(
        "Building the slides' lab in network namespaces {prefix}-{{hostA,R1,R2,hostB}}"
    ));
    // One queue per veth: one AF_XDP worker per router serves it.
    let lab = Lab::up_with(
        &prefix,
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )?;
    println!(
        "hostA {} - in0 {} [R1] out0 {} --- out0 {} [R2] in0 {} - hostB {}",
        addr::HOST_A,
        addr::R1_IN,
        addr::R1_OUT,
        addr::R2_OUT,
        addr::R2_IN,
        addr::HOST_B
    );
    println!(
        "R1 = espgw, R2 = {}",
        match (swan_only, peer) {
            (true, _) => "strongSwan (and R1 too: --swan-only)",
            (false, Peer::Espgw) => "espgw (raw ESP, as in the slides)",
            (false, Peer::StrongSwan) => "strongSwan 5.9.8",
        }
    );

    if !swan_only {
        return demo_espgw(lab, peer, t0);
    }
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
                    "   {} ts {:?} === {:?}",
                    child_sa_line(c),
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
    step_done();
    println!("done in {:.1}s", t0.elapsed().as_secs_f64());
    if p.received == 0 || bad > 0 || esp == 0 {
        return Err(espgw_lab::Error::Invalid(
            "the demo tunnel did not carry the pings cleanly".into(),
        ));
    }
    Ok(())
}

/// Which router R2 is in the espgw demo.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    StrongSwan,
    Espgw,
}

/// The slides' IOS configuration of `node` from deploy/configs/ (`ESPGW_CONFIG_DIR` or
/// `deploy/configs` under the working directory, as deploy/demo.sh runs it).
fn slides_config(node: Node) -> espgw_lab::Result<String> {
    let dir = std::env::var_os("ESPGW_CONFIG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("deploy/configs"));
    let p = dir.join(format!("{}.conf", node.name().to_ascii_lowercase()));
    std::fs::read_to_string(&p)
        .map_err(|e| espgw_lab::Error::Invalid(format!("{}: {e}", p.display())))
}

/// The configuration without comment lines and with the PSK masked, for the screen.
fn shown_config(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("! "))
        .map(|l| {
            if let Some(r) = l.strip_prefix("crypto isakmp key ") {
                let rest = r.split_once(' ').map(|x| x.1).unwrap_or("");
                format!("crypto isakmp key ******** {rest}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn heading(prompt: &str) {
    println!("\n{prompt}");
}

/// espgw-control + espgw-dataplane on R1 (and on R2 with `--peer espgw`), strongSwan on
/// R2 otherwise; interesting traffic starts the tunnel.
fn demo_espgw(lab: Lab, peer: Peer, t0: Instant) -> espgw_lab::Result<()> {
    let bins = EspgwBins::locate()?;
    // The observable cable between R1 and R2 (an espgw router's AF_XDP frames never
    // reach tcpdump inside that router).
    let mut wire = Wire::insert(&lab)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = |core: usize| EspgwOptions {
        cores: vec![core % cores],
        ..EspgwOptions::default()
    };
    let r1_conf = slides_config(Node::R1)?;

    let mut swan = None;
    let mut r2 = None;
    match peer {
        Peer::StrongSwan => {
            step("R2: strongSwan 5.9.8 (charon, userspace ESP), IKEv1 Main Mode 3des-md5-modp1024, ESP 3des-md5");
            println!("    (5.9.8's libipsec only speaks ESP in UDP: it fakes NAT detection, so the tunnel floats to UDP 4500)");
            swan = Some(StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2))?);
        }
        Peer::Espgw => {
            let r2_conf = slides_config(Node::R2)?;
            step("R2: espgw (espgw-control + espgw-dataplane) with the slides' configuration, deploy/configs/r2.conf");
            print!("{}", indent(&shown_config(&r2_conf)));
            r2 = Some(EspgwRouter::start(
                &lab,
                Node::R2,
                &r2_conf,
                &bins,
                &opts(1),
            )?);
        }
    }
    step("R1: espgw with the slides' configuration, deploy/configs/r1.conf");
    print!("{}", indent(&shown_config(&r1_conf)));
    println!("    espgw-control: IKEv1 on UDP 500/4500, SAs into the shared-memory SA database, crypto ACL to the dataplane");
    println!("    espgw-dataplane: XDP classifiers on in0 and out0, AF_XDP worker(s) doing ESP");
    let r1 = EspgwRouter::start(&lab, Node::R1, &r1_conf, &bins, &opts(0))?;
    let cap = wire.capture("r1-r2")?;

    step("hostA's first packet to hostB: R1 runs Main Mode and Quick Mode");
    heading("R1# debug crypto isakmp\nR1# debug crypto ipsec");
    println!("Crypto ISAKMP debugging is on\nCrypto IPSEC debugging is on");

    heading(&format!(
        "hostA$ ping {}      (the first packet is interesting traffic: no SA yet)",
        addr::HOST_B
    ));
    let t_neg = Instant::now();
    let mut tries = 0;
    let mut up = false;
    while t_neg.elapsed() < Duration::from_secs(40) {
        tries += 1;
        let once = ["ping", "-n", "-q", "-c", "1", "-W", "1", addr::HOST_B];
        if lab.exec(Node::HostA, &once)?.status.success() {
            up = true;
            break;
        }
    }
    println!("-- R1's debug output (espgw-control) --");
    for l in r1.control_log().lines() {
        println!("    {l}");
    }
    if !up {
        println!("-- R1 dataplane --\n{}", indent(&r1.dataplane_log()));
        if let Some(r2) = &r2 {
            println!("-- R2 --\n{}", indent(&r2.control_log()));
        }
        return Err(espgw_lab::Error::Invalid(
            "no reply through the tunnel".into(),
        ));
    }
    println!(
        "first reply after {:.1}s ({tries} pings: packets waiting for an SA are dropped, as on IOS)",
        t_neg.elapsed().as_secs_f64()
    );

    step("Traffic through the tunnel: ping and iperf3");
    heading(&format!("hostA$ ping -c 5 {}", addr::HOST_B));
    let p = lab.ping(Node::HostA, addr::HOST_B, 5)?;
    println!("5 packets transmitted, {} received", p.received);

    let port = 47000 + (std::process::id() % 1000) as u16;
    let port_s = port.to_string();
    let _server = lab.spawn(Node::HostB, &["iperf3", "-s", "-p", &port_s])?;
    std::thread::sleep(Duration::from_millis(300));
    heading(&format!(
        "hostA$ iperf3 -c {} -p {port} -t 3 -b 50M      (TCP through the tunnel; capped so that tshark can judge every frame in seconds)",
        addr::HOST_B
    ));
    let out = lab.exec_timeout(
        Node::HostA,
        &[
            "iperf3",
            "-c",
            addr::HOST_B,
            "-p",
            &port_s,
            "-t",
            "3",
            "-b",
            "50M",
            "-J",
        ],
        Duration::from_secs(30),
    )?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mbps = j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e6;
    let retr = j["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    println!("{mbps:.0} Mbit/s received by hostB, {retr} TCP retransmissions");

    std::thread::sleep(Duration::from_millis(300));
    step("The routers' screens");
    for words in [
        &["show", "crypto", "isakmp", "sa"][..],
        &["show", "crypto", "ipsec", "sa"][..],
        &["show", "crypto", "map"][..],
        &["show", "crypto", "dataplane"][..],
    ] {
        heading(&format!("R1# {}", words.join(" ")));
        print!("{}", r1.cli(words)?);
    }
    let (encaps, decaps) = r1.ipsec_packet_counts()?;
    if let Some(r2) = &r2 {
        heading("R2# show crypto isakmp sa");
        print!("{}", r2.cli(&["show", "crypto", "isakmp", "sa"])?);
    }
    if let Some(sw) = &swan {
        heading("R2$ swanctl --list-sas");
        for ike in sw.list_sas()? {
            for c in &ike.children {
                println!("{}", child_sa_line(c));
            }
        }
    }

    step("The independent judge");
    heading(
        "tshark on the R1-R2 link, with espgw's key log (decrypt + authenticate every ESP frame)",
    );
    let (pcap, cap_drops) = cap.stop_counted()?;
    let (mut esp_keys, ike_keys) = r1.keys();
    if let Some(r2) = &r2 {
        esp_keys.extend(r2.keys().0);
    }
    let v = judge(&pcap, &esp_keys, &ike_keys)?;
    let esp: Vec<_> = v.esp().collect();
    let udp = esp.iter().filter(|(_, e)| e.udp_encap).count();
    let bad = v.bad_esp().len();
    let isakmp = v.isakmp().count();
    let ike_undecrypted = v
        .isakmp()
        .filter(|(_, i)| i.encrypted && !i.decrypted)
        .count();
    // Outer headers only: an inner address in an outer header is a packet in clear.
    let clear = std::process::Command::new("tcpdump")
        .arg("-r")
        .arg(&pcap)
        .args(["-n", "ip and (net 10.1.1.0/24 or net 10.1.2.0/24)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(usize::MAX);
    let ok =
        !esp.is_empty() && bad == 0 && ike_undecrypted == 0 && v.malformed() == 0 && clear == 0;
    println!(
        "{}: {} ESP frames ({}), {} decrypted with ICV good, {bad} bad; {isakmp} ISAKMP messages, \
         {ike_undecrypted} not decrypted; {} malformed; {clear} hostA/hostB packets in clear{}",
        if ok { "PASS" } else { "FAIL" },
        esp.len(),
        if udp == esp.len() {
            "ESP in UDP 4500"
        } else if udp == 0 {
            "raw ESP, IP protocol 50"
        } else {
            "raw ESP and ESP in UDP"
        },
        esp.len() - bad,
        v.malformed(),
        if cap_drops > 0 {
            format!("; tcpdump missed {cap_drops} frames")
        } else {
            String::new()
        }
    );

    step("Tearing down (espgw-dataplane detaches its XDP programs; espgw-control, charon, tcpdump, namespaces)");
    drop(r1);
    drop(r2);
    drop(swan);
    drop(wire);
    let prefix = lab.prefix().to_string();
    drop(lab);
    let left: Vec<String> = espgw_lab::lab::list_netns()?
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    step_done();
    println!(
        "done in {:.1}s; namespaces left: {}",
        t0.elapsed().as_secs_f64(),
        if left.is_empty() {
            "none".to_string()
        } else {
            left.join(" ")
        }
    );
    if !ok || p.received == 0 || encaps == 0 || decaps == 0 || mbps <= 0.0 {
        return Err(espgw_lab::Error::Invalid(
            "the espgw demo tunnel did not carry the traffic cleanly".into(),
        ));
    }
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// One CHILD_SA of `swanctl --list-sas` on one line: name, state, SPIs, encapsulation,
/// algorithms and packet counts.
fn child_sa_line(c: &espgw_lab::strongswan::ChildSaInfo) -> String {
    format!(
        "{} {} spi in {:08x} out {:08x} encap={} {} {} pkts in {} out {}",
        c.name,
        c.state,
        c.spi_in,
        c.spi_out,
        c.encap,
        c.encr_alg,
        c.integ_alg,
        c.packets_in,
        c.packets_out
    )
}
