//! `espgw-lab`: the lab for humans.
//!
//! ```text
//! espgw-lab up PREFIX        build the topology and leave it up
//! espgw-lab down PREFIX      kill whatever runs in it and delete it (idempotent)
//! espgw-lab reap             remove labs whose owning test process is gone
//! espgw-lab demo [PREFIX] [--aggressive] [--aes] [--espgw]
//!                            strongSwan R1 <-> strongSwan R2: initiate, ping, show SAs,
//!                            let tshark judge the wire, tear down. With --espgw, R1 runs
//!                            espgw-control (the slides' IOS configuration) and the IKE
//!                            exchange is espgw's (no data plane in the demo yet).
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
    let mut espgw = false;
    for a in args {
        match *a {
            "--aggressive" => mode = IkeMode::Aggressive,
            "--aes" => (proposal, esp) = ("aes128-sha1-modp2048", "aes128-sha1"),
            "--espgw" => espgw = true,
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

    if espgw {
        return demo_espgw(lab, mode, proposal, esp, t0);
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

/// The slides' R1 configuration for the chosen suite.
fn ios_config(proposal: &str, esp: &str, psk: &str) -> String {
    let (encr, hash, group) = if proposal.starts_with("aes128") {
        ("aes 128", "sha", 14)
    } else {
        ("3des", "md5", 2)
    };
    let ts = if esp.starts_with("aes128") {
        "esp-aes 128 esp-sha-hmac"
    } else {
        "esp-3des esp-md5-hmac"
    };
    format!(
        "hostname R1\n!\ncrypto isakmp policy 10\n encr {encr}\n hash {hash}\n authentication pre-share\n group {group}\n\
         crypto isakmp key {psk} address {peer}\n!\ncrypto ipsec transform-set myset {ts}\n mode tunnel\n!\n\
         crypto map vpn 10 ipsec-isakmp\n set peer {peer}\n set transform-set myset\n match address 101\n!\n\
         interface Ethernet0/0\n ip address {in_addr} 255.255.255.0\n!\n\
         interface Ethernet1/0\n ip address {out_addr} 255.255.255.240\n crypto map vpn\n!\n\
         access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n!\nend\n",
        peer = addr::R2_OUT,
        in_addr = addr::R1_IN,
        out_addr = addr::R1_OUT,
    )
}

/// Where the espgw binaries are: `ESPGW_BIN_DIR`, else next to this program.
fn espgw_bin(name: &str) -> espgw_lab::Result<std::path::PathBuf> {
    let dir = match std::env::var_os("ESPGW_BIN_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|p| p.to_path_buf()))
            .unwrap_or_default(),
    };
    let p = dir.join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(espgw_lab::Error::Invalid(format!(
            "{} not found (cargo build -p espgw-control)",
            p.display()
        )))
    }
}

fn demo_espgw(
    lab: Lab,
    mode: IkeMode,
    proposal: &str,
    esp: &str,
    t0: Instant,
) -> espgw_lab::Result<()> {
    let control = espgw_bin("espgw-control")?;
    let cli = espgw_bin("espgw")?;
    step(&format!(
        "Starting strongSwan on R2: IKEv1 {proposal}, ESP {esp}"
    ));
    let profile = Profile::new(Node::R2)
        .mode(mode)
        .proposal(proposal)
        .esp(esp);
    let r2 = StrongSwan::start(&lab, Node::R2, profile.clone())?;
    let cap = Capture::start(&lab, Node::R1, "out0")?;

    step("Starting espgw-control on R1 with the slides' IOS configuration");
    let dir = lab.dir().to_path_buf();
    let (conf, socket, keylog) = (
        dir.join("r1.conf"),
        dir.join("espgw.sock"),
        dir.join("keylog.txt"),
    );
    let text = ios_config(proposal, esp, &profile.psk);
    std::fs::write(&conf, &text)
        .map_err(|e| espgw_lab::Error::Invalid(format!("{}: {e}", conf.display())))?;
    print!("{}", indent(&text.replace(&profile.psk, "********")));
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (control_s, conf_s, socket_s, keylog_s) = (s(&control), s(&conf), s(&socket), s(&keylog));
    let mut args = vec![
        control_s.as_str(),
        "--config",
        &conf_s,
        "--socket",
        &socket_s,
        "--keylog",
        &keylog_s,
        "--interface-map",
        "Ethernet0/0=in0,Ethernet1/0=out0",
        "--no-sadb",
        "--debug",
        "isakmp,ipsec",
    ];
    if mode == IkeMode::Aggressive {
        args.push("--aggressive");
    }
    let mut r1 = lab.spawn(Node::R1, &args)?;
    lab.wait_for("espgw-control's socket", Duration::from_secs(20), || {
        socket.exists() || !r1.is_running()
    })?;
    let espgw_cli = |words: &[&str]| -> espgw_lab::Result<String> {
        let mut c = std::process::Command::new(&cli);
        c.arg("--socket").arg(&socket).args(words);
        let out = c
            .output()
            .map_err(|e| espgw_lab::Error::Invalid(format!("espgw: {e}")))?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };

    step("R1# initiate vpn 10   (what interesting traffic would trigger)");
    print!("{}", indent(&espgw_cli(&["initiate", "vpn", "10"])?));
    let sa = r2.wait_established(Duration::from_secs(60))?;
    let _ = lab.wait_for("espgw's IPsec SA", Duration::from_secs(10), || {
        espgw_cli(&["show", "crypto", "ipsec", "sa"])
            .map(|o| o.contains("spi:"))
            .unwrap_or(false)
    });
    println!(
        "strongSwan on R2: IKE SA {} with {}:{}",
        sa.state, sa.remote_host, sa.remote_port
    );

    step("R1# show crypto isakmp sa");
    print!(
        "{}",
        indent(&espgw_cli(&["show", "crypto", "isakmp", "sa"])?)
    );
    step("R1# show crypto ipsec sa");
    print!(
        "{}",
        indent(&espgw_cli(&["show", "crypto", "ipsec", "sa"])?)
    );

    step("R1# debug crypto isakmp (first lines of espgw-control's debug output)");
    let log = r1.log();
    for l in log.lines().take(30) {
        println!("    {l}");
    }

    step("tshark decrypts the IKE exchange with espgw's key log");
    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop()?;
    let (esp_keys, ike_keys) =
        espgw_lab::parse_keylog(&std::fs::read_to_string(&keylog).unwrap_or_default());
    let v = judge(&pcap, &esp_keys, &ike_keys)?;
    print!("{}", indent(&v.summary()));
    let undecrypted = v
        .isakmp()
        .filter(|(_, i)| i.encrypted && !i.decrypted)
        .count();
    println!(
        "{} ISAKMP messages, {undecrypted} encrypted ones not decrypted, {} malformed frames",
        v.isakmp().count(),
        v.malformed()
    );
    println!(
        "(ESP through espgw-dataplane is not part of this demo yet: hostA-hostB traffic needs it.)"
    );

    step("Tearing down (espgw-control, charon, tcpdump, namespaces)");
    r1.stop();
    drop(r2);
    drop(lab);
    println!("done in {:.1}s", t0.elapsed().as_secs_f64());
    if undecrypted > 0 || v.malformed() > 0 || v.isakmp().count() == 0 {
        return Err(espgw_lab::Error::Invalid(
            "the IKE exchange did not judge clean".into(),
        ));
    }
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
