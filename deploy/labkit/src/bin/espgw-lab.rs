//! `espgw-lab`: the lab for humans. `up PREFIX` builds the topology and leaves it up,
//! `down PREFIX` removes it (and kills whatever runs in it), `demo` runs the
//! strongSwan-to-strongSwan demonstration.

use std::process::ExitCode;

use espgw_lab::{Lab, Node};

fn usage() -> ExitCode {
    eprintln!("usage: espgw-lab up PREFIX | down PREFIX | demo [PREFIX]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["up", prefix] => up(prefix),
        ["down", prefix] => down(prefix),
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
