//! The control-socket contract between the `espgw` CLI and the `espgw-control` daemon.
//!
//! Transport: a Unix stream socket (default [`DEFAULT_SOCKET`], mode 0600), JSON lines.
//! The client writes one [`Request`] per line; the daemon answers each with exactly one
//! [`Response`] line, in order, except [`Request::FollowDebug`], after which the daemon
//! writes a [`Response::DebugLine`] per debug line until the client closes the connection
//! (the CLI's "terminal monitor" behaviour, ended by Ctrl-C).
//!
//! The daemon implements [`ControlHandler`] and runs [`serve`]; the CLI uses [`Client`].
//! The daemon fills the view structs ([`IsakmpSaView`], [`IpsecSaView`], [`CryptoMapView`]);
//! the CLI formats them exactly as IOS does (`cli::show`).

use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;

use crate::config::model::{
    AclKind, Config, DhGroup, IpsecMode, IsakmpPolicy, ProxyId, SaLifetime,
};

pub use super::views::*;

/// Where the daemon listens unless told otherwise (`--socket PATH`).
pub const DEFAULT_SOCKET: &str = "/run/espgw/control.sock";

/// Longest request line the daemon accepts (bytes, newline included).
pub const MAX_LINE: usize = 4 << 20;

/// Longest response line a client accepts: `show crypto ipsec sa` of 10,000 crypto map
/// entries is about 10 MB of JSON, and the classifier holds 65,536 entries.
pub const MAX_RESPONSE_LINE: usize = 256 << 20;

// ---------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------

/// What a `debug crypto …` command turns on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebugTarget {
    Isakmp,
    Ipsec,
}

impl DebugTarget {
    /// IOS's confirmation: `Crypto ISAKMP debugging is on`.
    pub fn on_message(self) -> &'static str {
        match self {
            DebugTarget::Isakmp => "Crypto ISAKMP debugging is on",
            DebugTarget::Ipsec => "Crypto IPSEC debugging is on",
        }
    }
}

/// IOS's confirmation of `undebug all`.
pub const UNDEBUG_ALL_MESSAGE: &str = "All possible debugging has been turned off";

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// `show crypto isakmp sa` → [`Response::IsakmpSas`].
    ShowIsakmpSa,
    /// `show crypto ipsec sa` → [`Response::IpsecSas`].
    ShowIpsecSa,
    /// `show crypto map` → [`Response::CryptoMaps`].
    ShowCryptoMap,
    /// `show crypto isakmp policy` → [`Response::IsakmpPolicies`].
    ShowIsakmpPolicy,
    /// `debug crypto isakmp|ipsec` → [`Response::Done`] with [`DebugTarget::on_message`].
    Debug { target: DebugTarget },
    /// `undebug all` → [`Response::Done`] with [`UNDEBUG_ALL_MESSAGE`].
    UndebugAll,
    /// `clear crypto sa`: delete every IPsec SA (sending delete notifications) →
    /// [`Response::Done`].
    ClearCryptoSa,
    /// `clear crypto isakmp`: delete every ISAKMP SA → [`Response::Done`].
    ClearCryptoIsakmp,
    /// `initiate MAP SEQ`: start negotiation for a crypto map entry exactly as interesting
    /// traffic would → [`Response::Done`] once started (not once complete), or
    /// [`Response::Error`] if no such entry.
    Initiate { map: String, seq: u32 },
    /// Follow debug output: a stream of [`Response::DebugLine`] until the client hangs up.
    FollowDebug,
    /// `show crypto dataplane` (espgw's own, not an IOS command): the data plane's
    /// counters of dropped packets and sa_request events from the SA database →
    /// [`Response::DataplaneCounters`].
    ShowDataplane,
    /// `show crypto session`: the remote-access clients → [`Response::CryptoSessions`].
    ShowCryptoSession,
    /// `clear crypto session`: disconnect every remote-access client (DELETE sent, its
    /// address back to the pool) → [`Response::Done`].
    ClearCryptoSession,
    /// `show crypto ipsec client ezvpn` → [`Response::Ezvpn`].
    ShowEzvpn,
    /// `crypto ipsec client ezvpn connect NAME` → [`Response::Done`], or
    /// [`Response::Error`] if no such tunnel.
    EzvpnConnect { name: String },
    /// `show crypto ipsec sa peer A | map NAME | detail` → [`Response::IpsecSas`], or
    /// with `detail` [`Response::IpsecSasDetail`].
    ShowIpsecSaFiltered { filter: IpsecSaFilter },
    /// `show crypto isakmp peers` → [`Response::IsakmpPeers`].
    ShowIsakmpPeers,
    /// `show crypto isakmp default policy` → [`Response::DefaultIsakmpPolicy`].
    ShowIsakmpDefaultPolicy,
    /// `show crypto engine connections active` → [`Response::EngineConnections`].
    ShowEngineConnections,
    /// `show crypto ipsec transform-set` → [`Response::TransformSets`].
    ShowTransformSets,
    /// `show crypto session detail`: every peer's session → [`Response::CryptoSessionsDetail`].
    ShowCryptoSessionDetail,
    /// `clear crypto session remote A`: the IPsec and ISAKMP SAs with A (DELETE sent) →
    /// [`Response::Done`].
    ClearCryptoSessionRemote { peer: Ipv4Addr },
    /// `clear crypto sa peer A`: the IPsec SAs with A (DELETE sent) → [`Response::Done`].
    ClearCryptoSaPeer { peer: Ipv4Addr },
    /// `clear crypto sa map NAME`: the IPsec SAs of crypto map NAME (DELETE sent) →
    /// [`Response::Done`], or [`Response::Error`] if there is no such map.
    ClearCryptoSaMap { map: String },
    /// `show logging` → [`Response::Logging`].
    ShowLogging,
    /// `show running-config` → [`Response::RunningConfig`].
    ShowRunningConfig,
    /// `configure FILE`: `text` (FILE's contents; `name` says which file) replaces the
    /// configuration in force → [`Response::Done`] with what was kept and deleted, or
    /// [`Response::Error`] with every error and its line (then nothing changed).
    Configure { name: String, text: String },
}

/// One response line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    IsakmpSas {
        sas: Vec<IsakmpSaView>,
    },
    /// One view per crypto map entry and ACL permit line (IOS lists them even when no SA
    /// exists yet, with zero counters and no SAs).
    IpsecSas {
        sas: Vec<IpsecSaView>,
    },
    CryptoMaps {
        maps: Vec<CryptoMapView>,
    },
    /// The configured policies in priority order, then IOS's default protection suite.
    IsakmpPolicies {
        policies: Vec<IsakmpPolicy>,
        default_suite: IsakmpPolicy,
    },
    /// A command was carried out; `message` is what the CLI prints (may be empty).
    Done {
        message: String,
    },
    /// One line of debug output (no trailing newline).
    DebugLine {
        line: String,
    },
    /// The data plane's global counters, in the database's order.
    DataplaneCounters {
        counters: Vec<DataplaneCounterView>,
    },
    /// `show crypto session`: one entry per remote-access client.
    CryptoSessions {
        sessions: Vec<CryptoSessionView>,
    },
    /// `show crypto ipsec client ezvpn`: one entry per Easy VPN client tunnel.
    Ezvpn {
        tunnels: Vec<super::ezvpn::EzvpnView>,
    },
    /// `show crypto ipsec sa detail`: the blocks, each with its error counters.
    IpsecSasDetail {
        sas: Vec<(IpsecSaView, IpsecErrorCounters)>,
    },
    IsakmpPeers {
        peers: Vec<IsakmpPeerView>,
    },
    /// The suite espgw proposes and accepts when no `crypto isakmp policy` is configured.
    DefaultIsakmpPolicy {
        policies: Vec<IsakmpPolicy>,
    },
    EngineConnections {
        connections: Vec<EngineConnectionView>,
    },
    TransformSets {
        sets: Vec<TransformSetView>,
    },
    CryptoSessionsDetail {
        sessions: Vec<SessionDetailView>,
    },
    /// `show logging`: the settings, the counters and the buffered log.
    Logging {
        view: LoggingView,
    },
    /// `show running-config`: the configuration in force, secrets already masked
    /// (`cli::show::running::running_lines`).
    RunningConfig {
        lines: Vec<String>,
    },
    /// The request failed; `message` is printed on stderr (IOS style, e.g.
    /// `% No such crypto map entry: vpn 20`).
    Error {
        message: String,
    },
}

/// `show logging`: where system messages go and how many went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingView {
    /// System messages the endpoint produced.
    pub messages: u64,
    /// Refused by `logging rate-limit`.
    pub rate_limited: u64,
    /// Datagrams that could not be sent to a host.
    pub dropped: u64,
    /// Console (the daemon's log) on: the messages it got.
    pub console: Option<u64>,
    /// `logging buffered`: (level name, size in bytes).
    pub buffered: Option<(String, u32)>,
    pub buffer_logged: u64,
    /// (messages a second, `all`|`console`).
    pub rate_limit: Option<(u32, String)>,
    pub trap_level: String,
    /// Messages at or above the trap level sent to the hosts.
    pub trap_logged: u64,
    pub hosts: Vec<LogHostView>,
    /// The buffered log, oldest first.
    pub buffer: Vec<String>,
}

/// One `logging host` and what went to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHostView {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub lines_logged: u64,
    pub lines_rate_limited: u64,
    pub send_errors: u64,
}

/// One remote-access client in `show crypto session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoSessionView {
    /// The interface its crypto map is applied to.
    pub interface: String,
    /// The XAUTH user (None before XAUTH or without it).
    pub username: Option<String>,
    /// The client group (`crypto isakmp client configuration group`).
    pub group: String,
    /// The Mode Config address from the pool.
    pub assigned: Option<Ipv4Addr>,
    /// `UP-ACTIVE` (configured, IPsec SAs), `UP-IDLE` (IKE only), `UP-NO-IKE`.
    pub status: String,
    pub peer: Ipv4Addr,
    pub peer_port: u16,
    pub local: Ipv4Addr,
    pub conn_id: u32,
    /// Its IPsec flows: (local proxy, remote proxy, active SAs).
    pub flows: Vec<(ProxyId, ProxyId, u32)>,
}

/// One data-plane counter: its name (a drop reason, `no-sa`, `replay`…, as
/// `espgw_sadb::DropReason::name` gives it, or an sa_request statistic) and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneCounterView {
    pub name: String,
    pub value: u64,
}

impl Response {
    pub fn done(message: impl Into<String>) -> Self {
        Response::Done {
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Response::Error {
            message: message.into(),
        }
    }
    /// The policy screen for a configuration.
    pub fn isakmp_policies(cfg: &Config) -> Self {
        Response::IsakmpPolicies {
            policies: cfg.proposals().cloned().collect(),
            default_suite: IsakmpPolicy::default_suite(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Views the daemon fills
// ---------------------------------------------------------------------------------------

/// Phase 1 states as `show crypto isakmp sa` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IsakmpSaState {
    /// Main Mode before MM2 is processed (also a failed SA about to be deleted).
    MmNoState,
    /// MM2/MM3: SA parameters agreed.
    MmSaSetup,
    /// MM4/MM5: keys exchanged.
    MmKeyExch,
    /// Phase 1 complete (Main or Aggressive Mode).
    QmIdle,
    AgNoState,
    AgInitExch,
    AgAuth,
}

impl IsakmpSaState {
    pub fn ios_name(self) -> &'static str {
        match self {
            IsakmpSaState::MmNoState => "MM_NO_STATE",
            IsakmpSaState::MmSaSetup => "MM_SA_SETUP",
            IsakmpSaState::MmKeyExch => "MM_KEY_EXCH",
            IsakmpSaState::QmIdle => "QM_IDLE",
            IsakmpSaState::AgNoState => "AG_NO_STATE",
            IsakmpSaState::AgInitExch => "AG_INIT_EXCH",
            IsakmpSaState::AgAuth => "AG_AUTH",
        }
    }
}

/// The status column of `show crypto isakmp sa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsakmpSaStatus {
    /// `ACTIVE`
    Active,
    /// `ACTIVE (deleted)`: being torn down.
    ActiveDeleted,
    /// blank: not (yet) usable.
    Inactive,
}

impl IsakmpSaStatus {
    pub fn ios_name(self) -> &'static str {
        match self {
            IsakmpSaStatus::Active => "ACTIVE",
            IsakmpSaStatus::ActiveDeleted => "ACTIVE (deleted)",
            IsakmpSaStatus::Inactive => "",
        }
    }
}

/// One row of `show crypto isakmp sa`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsakmpSaView {
    /// The responder's address (IOS prints dst first).
    pub dst: Ipv4Addr,
    /// The initiator's address.
    pub src: Ipv4Addr,
    pub state: IsakmpSaState,
    /// IOS numbers ISAKMP SAs from 1001.
    pub conn_id: u32,
    pub status: IsakmpSaStatus,
}

/// Status line of one ESP SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EspSaStatus {
    /// `ACTIVE`
    Active,
    /// `STANDBY`: installed but not yet in use (make-before-break).
    Standby,
    /// `ACTIVE(ACTIVE)` style strings are not used; expiring SAs show as `EXPIRED`.
    Expired,
}

impl EspSaStatus {
    pub fn ios_name(self) -> &'static str {
        match self {
            EspSaStatus::Active => "ACTIVE",
            EspSaStatus::Standby => "STANDBY",
            EspSaStatus::Expired => "EXPIRED",
        }
    }
}

/// One inbound or outbound ESP SA in `show crypto ipsec sa`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EspSaView {
    pub spi: u32,
    /// `esp-3des esp-md5-hmac` (the transform set's string).
    pub transform: String,
    pub mode: IpsecMode,
    /// NAT-T: prints `{Tunnel UDP-Encaps, }`.
    pub udp_encap: bool,
    /// IOS numbers IPsec SAs from 2001 (slides: 2029 in, 2030 out).
    pub conn_id: u32,
    /// `flow_id: SW:29`.
    pub flow_id: u32,
    pub crypto_map: String,
    pub remaining_kb: u64,
    pub remaining_secs: u64,
    /// Bytes (3DES 8, AES-CBC 16).
    pub iv_size: u8,
    pub replay_detection: bool,
    pub status: EspSaStatus,
}

/// Packet counters of one `show crypto ipsec sa` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpsecCounters {
    pub encaps: u64,
    pub encrypt: u64,
    pub digest: u64,
    pub decaps: u64,
    pub decrypt: u64,
    pub verify: u64,
    /// Outbound packets of the SAs the data plane dropped (any reason: the next hop did
    /// not resolve, sequence numbers exhausted…).
    pub send_errors: u64,
    /// Inbound packets of the SAs the data plane dropped (replay, authentication,
    /// malformed, outside the proxy identities…).
    pub recv_errors: u64,
}

/// One block of `show crypto ipsec sa`: one crypto map entry × one ACL permit line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecSaView {
    /// IOS interface name the map is applied to (`Ethernet1/0`).
    pub interface: String,
    /// Crypto map name (`Crypto map tag: vpn`).
    pub map_tag: String,
    /// Sequence number of the entry (not printed by IOS; for scripts).
    pub map_seq: u32,
    pub local_addr: Ipv4Addr,
    pub local_ident: ProxyId,
    pub remote_ident: ProxyId,
    /// `current_peer A port P`: the peer in use (the entry's first peer before any SA).
    pub current_peer: Ipv4Addr,
    /// 500, or 4500 after NAT-T floated.
    pub current_peer_port: u16,
    /// Inside `flags={…}`, e.g. `["origin_is_acl"]`.
    pub flags: Vec<String>,
    pub counters: IpsecCounters,
    pub path_mtu: u16,
    pub ip_mtu: u16,
    /// `ip mtu idb Ethernet1/0`.
    pub ip_mtu_idb: String,
    /// 0 when there is no outbound SA.
    pub current_outbound_spi: u32,
    pub inbound_esp: Vec<EspSaView>,
    pub outbound_esp: Vec<EspSaView>,
}

impl IpsecSaView {
    /// The blocks `show crypto ipsec sa` prints for a configuration before any SA exists:
    /// one per crypto map entry that is applied to an interface and per permit line of its
    /// ACL that IKEv1 can express, with the entry's first peer on port 500, zero counters,
    /// MTU 1500 and no SAs. The daemon starts from these and fills in peers, ports,
    /// counters and SAs.
    pub fn skeletons(cfg: &Config) -> Vec<IpsecSaView> {
        let mut out = Vec::new();
        for r in cfg.map_entries() {
            let Some(iface) = cfg.interface_for_map(r.map_name()) else {
                continue;
            };
            let Some(local_addr) = cfg.local_address_for_map(r.map_name()) else {
                continue;
            };
            let current_peer = r
                .entry
                .peers
                .first()
                .copied()
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            for pair in cfg.proxy_pairs(r.entry).into_iter().flatten() {
                out.push(IpsecSaView {
                    interface: iface.name.clone(),
                    map_tag: r.map_name().to_string(),
                    map_seq: r.seq(),
                    local_addr,
                    local_ident: pair.local,
                    remote_ident: pair.remote,
                    current_peer,
                    current_peer_port: 500,
                    flags: vec!["origin_is_acl".to_string()],
                    counters: IpsecCounters::default(),
                    path_mtu: 1500,
                    ip_mtu: 1500,
                    ip_mtu_idb: iface.name.clone(),
                    current_outbound_spi: 0,
                    inbound_esp: Vec::new(),
                    outbound_esp: Vec::new(),
                });
            }
        }
        out
    }
}

/// The access list of a crypto map entry in `show crypto map`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclView {
    pub name: String,
    pub kind: AclKind,
    /// Each line after `access-list NAME `: `permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255`.
    pub lines: Vec<String>,
}

/// One `crypto map NAME SEQ` entry in `show crypto map`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoMapEntryView {
    pub seq: u32,
    pub peers: Vec<Ipv4Addr>,
    /// `None`: no `match address` (IOS prints `No matching address list set.`).
    pub acl: Option<AclView>,
    /// The peer in use now; the first configured peer when none is.
    pub current_peer: Option<Ipv4Addr>,
    pub lifetime: SaLifetime,
    pub pfs: Option<DhGroup>,
    pub transform_sets: Vec<String>,
}

/// A crypto map in `show crypto map`: its entries, then the interfaces using it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoMapView {
    pub name: String,
    pub entries: Vec<CryptoMapEntryView>,
    /// IOS interface names.
    pub interfaces: Vec<String>,
}

impl CryptoMapView {
    /// Views of every crypto map of a configuration. `current_peer(map, seq)` says which
    /// peer an entry is using now (`None`: not negotiated; the first `set peer` is shown).
    pub fn from_config(
        cfg: &Config,
        current_peer: impl Fn(&str, u32) -> Option<Ipv4Addr>,
    ) -> Vec<CryptoMapView> {
        cfg.crypto_maps
            .values()
            .map(|map| CryptoMapView {
                name: map.name.clone(),
                entries: map
                    .entries
                    .values()
                    .map(|e| CryptoMapEntryView {
                        seq: e.seq,
                        peers: e.peers.clone(),
                        acl: cfg.acl_for(e).map(|acl| AclView {
                            name: acl.name.clone(),
                            kind: acl.kind,
                            lines: acl.entries.iter().map(|l| l.ios_text()).collect(),
                        }),
                        current_peer: current_peer(&map.name, e.seq)
                            .or_else(|| e.peers.first().copied()),
                        lifetime: cfg.lifetime_for(e),
                        pfs: e.pfs,
                        transform_sets: e.transform_sets.clone(),
                    })
                    .collect(),
                interfaces: cfg
                    .interfaces_using_map(&map.name)
                    .map(|i| i.name.clone())
                    .collect(),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// What the daemon implements to answer the CLI.
pub trait ControlHandler: Send + Sync + 'static {
    /// Answer one request. Never called with [`Request::FollowDebug`] (the server handles
    /// it with [`ControlHandler::debug_subscribe`]).
    fn handle(&self, request: Request) -> impl Future<Output = Response> + Send;

    /// A receiver of debug lines (the daemon keeps the `broadcast::Sender` and sends each
    /// debug line it also writes to its log).
    fn debug_subscribe(&self) -> broadcast::Receiver<String>;
}

/// Bind the control socket: create the parent directory (mode 0700) if missing, remove a
/// stale socket file, bind, and set the socket's mode to 0600.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            // A live daemon answers a connect; do not steal its socket.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running daemon", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Bind `path` and serve requests forever (until an accept error). Each connection runs in
/// its own task on the current runtime.
pub async fn serve<H: ControlHandler>(path: &Path, handler: Arc<H>) -> io::Result<()> {
    let listener = bind(path)?;
    serve_listener(listener, handler).await
}

/// Serve on an already bound listener.
pub async fn serve_listener<H: ControlHandler>(
    listener: UnixListener,
    handler: Arc<H>,
) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let h = Arc::clone(&handler);
        tokio::spawn(async move {
            // A client that misbehaves only loses its own connection.
            let _ = serve_connection(stream, h).await;
        });
    }
}

/// Read one line of at most `max` bytes. `Ok(None)` at end of stream.
async fn read_bounded_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<()>> {
    buf.clear();
    let n = (&mut *reader)
        .take(max as u64)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && n >= max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(Some(()))
}

async fn write_response<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    response: &Response,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

/// Answer requests on one connection until the client closes it.
pub async fn serve_connection<H: ControlHandler>(
    stream: UnixStream,
    handler: Arc<H>,
) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    while read_bounded_line(&mut reader, &mut buf, MAX_LINE)
        .await?
        .is_some()
    {
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let request: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                write_response(&mut w, &Response::error(format!("% bad request: {e}"))).await?;
                continue;
            }
        };
        if request == Request::FollowDebug {
            let mut rx = handler.debug_subscribe();
            loop {
                tokio::select! {
                    line = rx.recv() => match line {
                        Ok(line) => write_response(&mut w, &Response::DebugLine { line }).await?,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let line = format!("%ESPGW-4-DEBUG_DROPPED: {n} debug lines dropped (terminal too slow)");
                            write_response(&mut w, &Response::DebugLine { line }).await?
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                    more = read_bounded_line(&mut reader, &mut buf, MAX_LINE) => {
                        // The client sends nothing while following; EOF (or anything) ends it.
                        let _ = more;
                        return Ok(());
                    }
                }
            }
        }
        let response = handler.handle(request).await;
        write_response(&mut w, &response).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// Why a CLI request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {}: {source} (is espgw-control running?)", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("control socket: daemon sent an unreadable response: {0}")]
    Protocol(#[from] serde_json::Error),
    #[error("control socket: daemon closed the connection")]
    Closed,
}

/// A connection to the daemon's control socket.
pub struct Client {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (r, w) = stream.into_split();
        Ok(Client {
            reader: BufReader::new(r),
            writer: w,
            buf: Vec::new(),
        })
    }

    /// Send a request without waiting for the answer.
    pub async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// Read the next response line.
    pub async fn recv(&mut self) -> Result<Response, ClientError> {
        match read_bounded_line(&mut self.reader, &mut self.buf, MAX_RESPONSE_LINE).await? {
            None => Err(ClientError::Closed),
            Some(()) => Ok(serde_json::from_slice(&self.buf)?),
        }
    }

    /// Send a request and wait for its response.
    pub async fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.send(request).await?;
        self.recv().await
    }

    /// Start following debug output; then call [`Client::recv`] for each
    /// [`Response::DebugLine`]. Drop the client to stop.
    pub async fn follow_debug(&mut self) -> Result<(), ClientError> {
        self.send(&Request::FollowDebug).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_json_shape() {
        let r = Request::Initiate {
            map: "vpn".into(),
            seq: 10,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"request":"initiate","map":"vpn","seq":10}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        let d = serde_json::to_string(&Request::Debug {
            target: DebugTarget::Isakmp,
        })
        .unwrap();
        assert_eq!(d, r#"{"request":"debug","target":"isakmp"}"#);
        assert_eq!(
            serde_json::to_string(&Request::ShowIsakmpSa).unwrap(),
            r#"{"request":"show_isakmp_sa"}"#
        );
    }

    #[test]
    fn state_serializes_as_ios_name() {
        for s in [
            IsakmpSaState::MmNoState,
            IsakmpSaState::MmSaSetup,
            IsakmpSaState::MmKeyExch,
            IsakmpSaState::QmIdle,
            IsakmpSaState::AgNoState,
            IsakmpSaState::AgInitExch,
            IsakmpSaState::AgAuth,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.ios_name())
            );
        }
    }
}
