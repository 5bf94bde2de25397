//! The key and certificate commands through the `espgw` command line itself.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

fn testdata(name: &str) -> String {
    format!("{}/src/pki/testdata/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `espgw --key-store DIR ARGS…` (no daemon involved); (success, stdout, stderr).
fn espgw(dir: &std::path::Path, args: &str) -> (bool, String, String) {
    let dir = dir.to_str().unwrap();
    let mut argv = vec!["--key-store", dir];
    argv.extend(args.split_whitespace());
    let (code, out, err) =
        super::super::tests::espgw(std::path::Path::new("/nonexistent.sock"), &argv);
    (code == ExitCode::SUCCESS, out, err)
}

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("espgw-clipki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Dir(d)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn generate_then_show_mypubkey() {
    let d = Dir::new("gen");
    let (ok, out, err) = espgw(&d.0, "cry key gen rsa gen lab R1KEY mod 1024");
    assert!(ok, "{err}");
    assert!(
        out.starts_with("The name for the keys will be: R1KEY\n"),
        "{out}"
    );
    assert!(out.contains("% 1024 bit key written to"), "{out}");
    let key = d.0.join("keys/R1KEY.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (ok, out, _) = espgw(&d.0, "show crypto key mypubkey rsa");
    assert!(ok);
    assert!(
        out.contains("Key name: R1KEY\nKey type: RSA KEYS\n"),
        "{out}"
    );
    assert!(
        out.contains(
            " Key Data:\n  30819F30 0D06092A 864886F7 0D010101 05000381 8D003081 89028181"
        ),
        "{out}"
    );
    // Nothing private is shown.
    let pem = std::fs::read_to_string(&key).unwrap();
    let der_line: String = pem.lines().nth(1).unwrap().to_string();
    assert!(!out.contains(&der_line));
    // A second generate under the same label is refused, the key stays.
    let (ok, _, err) = espgw(&d.0, "crypto key generate rsa label R1KEY modulus 1024");
    assert!(!ok);
    assert!(
        err.starts_with("% You already have RSA keys defined named R1KEY"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
}

#[test]
fn generate_errors_say_why() {
    let d = Dir::new("generr");
    for (args, want) in [
        (
            "crypto key generate rsa modulus 2048",
            "% label LABEL is required",
        ),
        (
            "crypto key generate rsa label K",
            "% modulus BITS is required",
        ),
        (
            "crypto key generate rsa label K modulus 1000",
            "% The modulus size must be 512-4096 bits",
        ),
        (
            "crypto key generate rsa label K modulus big",
            "% modulus: \"big\" is not a number of bits",
        ),
        (
            "crypto key generate rsa usage-keys label K modulus 1024",
            "% usage-keys is not supported",
        ),
        (
            "crypto key generate rsa label a/b modulus 1024",
            "% A key label is 1-64 characters",
        ),
        (
            "crypto key frobnicate",
            "usage: espgw crypto key generate rsa",
        ),
    ] {
        let (ok, _, err) = espgw(&d.0, args);
        assert!(!ok, "{args}");
        assert!(err.starts_with(want), "{args}: {err}");
    }
}

#[test]
fn import_then_show_certificates() {
    let d = Dir::new("import");
    let args = format!(
        "crypto pki import LAB pem {} {} {} {}",
        testdata("ca.pem"),
        testdata("r1.pem"),
        testdata("r1.key"),
        testdata("ca.crl")
    );
    let (ok, out, err) = espgw(&d.0, &args);
    assert!(ok, "{err}");
    assert!(out.contains("% The CA certificate (SN: 36C436964F7608B0) of LAB was imported: CN=Lab CA,O=espgw lab,C=CH"), "{out}");
    assert!(out.contains("% Key pair LAB imported (mode 0600)"), "{out}");
    assert!(
        out.contains(
            "crypto pki certificate chain LAB\n certificate 35219C1D59F6446A\n  30820351 30820239"
        ),
        "{out}"
    );
    // The printed block is configuration the parser takes back, byte for byte.
    let block = &out[out.find("crypto pki certificate chain").unwrap()..];
    let text = format!("crypto pki trustpoint LAB\n{block}");
    let cfg = crate::config::parse_config(&text, &Default::default())
        .unwrap()
        .config;
    let chain = cfg.pki.chain("LAB").unwrap();
    let r1 = crate::pki::store::KeyStore::new(&d.0)
        .trustpoint("LAB")
        .unwrap()
        .cert
        .unwrap();
    assert_eq!(chain.certificates[0].der, r1.der());
    let (ok, out, _) = espgw(&d.0, "show crypto pki certificates");
    assert!(ok);
    let want = "Certificate\n  Status: Available\n  Certificate Serial Number (hex): 35219C1D59F6446A\n  Certificate Usage: General Purpose\n  Issuer: \n    cn=Lab CA\n    o=espgw lab\n    c=CH\n  Subject:\n    Name: r1.lab.example\n    IP Address: 172.16.172.10\n    cn=r1.lab.example\n";
    assert!(out.starts_with(want), "{out}");
    assert!(out.contains("CA Certificate\n  Status: Available\n  Certificate Serial Number (hex): 36C436964F7608B0\n  Certificate Usage: Signature\n"), "{out}");
    assert!(out.contains("  Associated Trustpoints: LAB \n"));
    let (ok, out, _) = espgw(&d.0, "show crypto key mypubkey rsa");
    assert!(ok && out.contains("Key name: LAB\n"), "{out}");
}

#[test]
fn import_errors_name_the_file() {
    let d = Dir::new("importerr");
    let (ok, _, err) = espgw(
        &d.0,
        &format!(
            "crypto pki import LAB pem {} {}",
            testdata("r1.pem"),
            testdata("r2.key")
        ),
    );
    assert!(!ok);
    assert!(err.contains("does not certify the private key"), "{err}");
    let (ok, _, err) = espgw(
        &d.0,
        &format!("crypto pki import LAB pem {}", testdata("gen.sh")),
    );
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "{}: no PEM block (-----BEGIN …-----) in the file\n",
            testdata("gen.sh")
        )
    );
    let (ok, _, err) = espgw(&d.0, "crypto pki import LAB pem /nonexistent.pem");
    assert!(!ok);
    assert!(err.starts_with("/nonexistent.pem: "), "{err}");
}
