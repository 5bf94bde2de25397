//! `show running-config`: the configuration in force, as IOS prints it — a `Building
//! configuration...` banner, the byte count, the commands with `!` between sections, `end`
//! — with every secret masked (`crypto isakmp key ***** address 172.16.172.20`).
//!
//! The daemon masks ([`running_lines`]) before the text leaves it, so no key crosses the
//! control socket; the CLI adds the banner ([`running_config`]). The commands are the ones
//! in force as the operator wrote them (comments and blank lines dropped, trailing blanks
//! trimmed), in their order.

use std::fmt::Write as _;

/// What a masked secret prints as.
pub const MASK: &str = "*****";

/// The lines of a configuration text as `show running-config` lists them: comments, blank
/// lines and a final `end` dropped, secrets masked, `!` after each section.
pub fn running_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_section = false;
    for raw in text.lines() {
        let line = raw.trim_end();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('!') {
            continue;
        }
        let indented = body.len() != line.len();
        if !indented && body == "end" {
            break;
        }
        if !indented && in_section {
            out.push("!".to_string());
        }
        in_section = indented;
        out.push(mask_line(line));
    }
    out
}

/// One line with its secret, if it carries one, replaced by [`MASK`]:
/// `crypto isakmp key K …`, a group's `key K`, an Easy VPN client's `group G key K`,
/// `… password P` and `… secret [5] S` (the optional type digit is kept).
pub fn mask_line(line: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut toks: Vec<&str> = line.split_whitespace().collect();
    let lower: Vec<String> = toks.iter().map(|t| t.to_ascii_lowercase()).collect();
    let is = |i: usize, w: &str| lower.get(i).is_some_and(|t| t == w);
    let mut secret_after: Vec<usize> = Vec::new();
    if is(0, "crypto") && is(1, "isakmp") && is(2, "key") {
        secret_after.push(2);
    }
    if !indent.is_empty() && is(0, "key") {
        secret_after.push(0);
    }
    if !indent.is_empty() && is(0, "group") && is(2, "key") {
        secret_after.push(2);
    }
    for (i, t) in lower.iter().enumerate() {
        if t == "password" || t == "secret" {
            secret_after.push(i);
        }
    }
    for k in secret_after {
        let mut at = k + 1;
        // `key 0 K`, `secret 5 HASH`: the type stays, what follows it is the secret.
        if toks
            .get(at)
            .is_some_and(|t| t.len() == 1 && t.as_bytes()[0].is_ascii_digit())
            && toks.len() > at + 1
        {
            at += 1;
        }
        if let Some(t) = toks.get_mut(at) {
            *t = MASK;
        }
    }
    format!("{indent}{}", toks.join(" "))
}

/// The screen: banner, byte count (of what follows it, as IOS counts), lines, `end`.
pub fn running_config(lines: &[String]) -> String {
    let mut body = String::from("!\n");
    for l in lines {
        let _ = writeln!(body, "{l}");
    }
    body.push_str("!\nend\n");
    format!(
        "Building configuration...\n\nCurrent configuration : {} bytes\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_form_is_masked_and_the_rest_kept() {
        let cases = [
            (
                "crypto isakmp key C!scO address 172.16.172.20",
                "crypto isakmp key ***** address 172.16.172.20",
            ),
            (
                "crypto isakmp key 0 s3 address 0.0.0.0 0.0.0.0",
                "crypto isakmp key 0 ***** address 0.0.0.0 0.0.0.0",
            ),
            (" key GroupKey1", " key *****"),
            (" group ezgrp key Gk", " group ezgrp key *****"),
            (" username bob password Pw", " username bob password *****"),
            (
                "username alice privilege 15 secret 5 $1$abc$def",
                "username alice privilege 15 secret 5 *****",
            ),
            (
                " set aggressive-mode password AmPsk",
                " set aggressive-mode password *****",
            ),
            // Not secrets: a public key chain, an ordinary line.
            ("crypto key pubkey-chain rsa", "crypto key pubkey-chain rsa"),
            (" set peer 172.16.172.20", " set peer 172.16.172.20"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_line(input), want, "{input}");
        }
    }

    #[test]
    fn comments_blank_lines_and_end_are_dropped_sections_separated() {
        let text = "! a comment with key Secret\nhostname R1\n\ncrypto isakmp policy 1\n encr 3des\nno ip domain lookup\nend\nignored\n";
        assert_eq!(
            running_lines(text),
            vec![
                "hostname R1",
                "crypto isakmp policy 1",
                " encr 3des",
                "!",
                "no ip domain lookup"
            ]
        );
    }

    #[test]
    fn byte_count_is_what_follows_the_count_line() {
        let s = running_config(&["hostname R1".to_string()]);
        let (_, rest) = s.split_once(" bytes\n").unwrap();
        assert!(s.contains(&format!("Current configuration : {} bytes", rest.len())));
        assert!(s.ends_with("!\nend\n"));
    }
}
