// SPDX-License-Identifier: MPL-2.0
//! Endpoint properties shared by `spicepasssink` and `spicepasssrc`: where the peer is,
//! which side waits, authentication, limits and liveness timing.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use spicepass_protocol::Role;

use crate::session::Config;
use crate::transport::{Address, DEFAULT_SPICE_PORT_NAME, Mode};

pub const DEFAULT_PORT: u32 = 5000;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 64 * 1024 * 1024;
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u32 = 1000;
pub const DEFAULT_HEARTBEAT_TIMEOUT_MS: u32 = 5000;

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpicepassTransport")]
pub enum TransportKind {
    #[enum_value(name = "Unix stream socket at `path`", nick = "unix")]
    Unix = 0,
    #[enum_value(name = "TCP to/from `host`:`port`", nick = "tcp")]
    Tcp = 1,
    #[enum_value(
        name = "Already-open connected fd `fd` (socketpair, inherited)",
        nick = "fd"
    )]
    Fd = 2,
    #[enum_value(
        name = "Character device or file at `path` opened read-write (virtio-serial port)",
        nick = "dev"
    )]
    Device = 3,
    #[enum_value(
        name = "Port channel `spice-port-name` of the SPICE server at `host`:`port` (connect only)",
        nick = "spice"
    )]
    Spice = 4,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpicepassMode")]
pub enum ModeKind {
    #[enum_value(name = "Wait for the peer to connect", nick = "listen")]
    Listen = 0,
    #[enum_value(
        name = "Connect to the peer (retried until it is there)",
        nick = "connect"
    )]
    Connect = 1,
}

impl From<ModeKind> for Mode {
    fn from(m: ModeKind) -> Mode {
        match m {
            ModeKind::Listen => Mode::Listen,
            ModeKind::Connect => Mode::Connect,
        }
    }
}

impl From<Mode> for ModeKind {
    fn from(m: Mode) -> ModeKind {
        match m {
            Mode::Listen => ModeKind::Listen,
            Mode::Connect => ModeKind::Connect,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointSettings {
    pub transport: TransportKind,
    pub path: Option<String>,
    pub host: String,
    pub port: u32,
    pub fd: i32,
    pub spice_port_name: String,
    pub spice_password: Option<String>,
    pub mode: ModeKind,
    pub auth_token: Option<String>,
    pub max_message_size: u32,
    pub heartbeat_interval_ms: u32,
    pub heartbeat_timeout_ms: u32,
}

impl EndpointSettings {
    pub fn new(mode: ModeKind) -> Self {
        Self {
            transport: TransportKind::Unix,
            path: None,
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            fd: -1,
            spice_port_name: DEFAULT_SPICE_PORT_NAME.to_owned(),
            spice_password: None,
            mode,
            auth_token: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            heartbeat_timeout_ms: DEFAULT_HEARTBEAT_TIMEOUT_MS,
        }
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1).into())
    }

    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms.max(1).into())
    }

    /// The peer address, or a message saying which property is missing.
    pub fn address(&self) -> Result<Address, String> {
        match self.transport {
            TransportKind::Unix => self
                .path
                .as_ref()
                .map(|p| Address::Unix(p.into()))
                .ok_or_else(|| "transport=unix needs the `path` (or `uri`) property".to_owned()),
            TransportKind::Device => self
                .path
                .as_ref()
                .map(|p| Address::Device(p.into()))
                .ok_or_else(|| "transport=dev needs the `path` (or `uri`) property".to_owned()),
            TransportKind::Tcp => Ok(Address::Tcp {
                host: self.host.clone(),
                port: u16::try_from(self.port)
                    .map_err(|_| format!("port {} is out of range", self.port))?,
            }),
            TransportKind::Fd if self.fd >= 0 => Ok(Address::Fd(self.fd)),
            TransportKind::Fd => Err("transport=fd needs the `fd` property".to_owned()),
            TransportKind::Spice => Ok(Address::Spice {
                host: self.host.clone(),
                port: u16::try_from(self.port)
                    .map_err(|_| format!("port {} is out of range", self.port))?,
                port_name: self.spice_port_name.clone(),
                password: self.spice_password.clone().unwrap_or_default(),
            }),
        }
    }

    /// What a session worker needs, from these settings (both elements start the same way;
    /// only the src grants a receive window).
    pub fn session_config(
        &self,
        role: Role,
        window_bytes: u64,
        window_buffers: u64,
    ) -> Result<Config, gst::ErrorMessage> {
        let address = self
            .address()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        Ok(Config {
            role,
            address: address.clone(),
            mode: self.mode.into(),
            auth_token: self.auth_token.as_ref().map(|t| t.as_bytes().to_vec()),
            max_message_size: self.max_message_size.into(),
            heartbeat_interval: self.heartbeat_interval(),
            heartbeat_timeout: self.heartbeat_timeout(),
            window_bytes,
            window_buffers,
            // Only unix sockets can pass fds; the worker also checks the link itself.
            shared_memory: matches!(address, Address::Unix(_) | Address::Fd(_)),
        })
    }

    pub fn uri(&self) -> Option<String> {
        self.address()
            .ok()
            .map(|a| a.to_uri(Some(self.mode.into())))
    }

    pub fn set_uri(&mut self, uri: &str) -> Result<(), String> {
        let (address, mode) = Address::parse_uri(uri).map_err(|e| e.to_string())?;
        match address {
            Address::Unix(p) => {
                self.transport = TransportKind::Unix;
                self.path = Some(p.to_string_lossy().into_owned());
            }
            Address::Device(p) => {
                self.transport = TransportKind::Device;
                self.path = Some(p.to_string_lossy().into_owned());
            }
            Address::Tcp { host, port } => {
                self.transport = TransportKind::Tcp;
                self.host = host;
                self.port = port.into();
            }
            Address::Fd(fd) => {
                self.transport = TransportKind::Fd;
                self.fd = fd;
            }
            Address::Spice {
                host,
                port,
                port_name,
                password,
            } => {
                self.transport = TransportKind::Spice;
                self.host = host;
                self.port = port.into();
                self.spice_port_name = port_name;
                self.spice_password = (!password.is_empty()).then_some(password);
            }
        }
        if let Some(mode) = mode {
            self.mode = mode.into();
        }
        Ok(())
    }

    /// The GObject properties every spicepass element has.
    pub fn properties(default_mode: ModeKind) -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecString::builder("uri")
                .nick("URI")
                .blurb(
                    "Peer address as spicepass+unix:///path, spicepass+tcp://host:port, \
                     spicepass+fd://N, spicepass+dev:///dev/virtio-ports/name or \
                     spicepass+spice://host:port?port=NAME&password=SECRET, optionally with \
                     mode=listen|connect in the query (sets transport/path/host/port/fd/mode \
                     and the spice-* properties; the password is never read back)",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("transport", TransportKind::Unix)
                .nick("Transport")
                .blurb("Kind of channel to the peer")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("path")
                .nick("Path")
                .blurb("Unix socket path (transport=unix) or device/file path (transport=dev)")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("host")
                .nick("Host")
                .blurb("TCP address to bind (listen) or connect to; loopback by default")
                .default_value(Some(DEFAULT_HOST))
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("port")
                .nick("Port")
                .blurb("TCP port (0 = any free port when listening)")
                .maximum(65535)
                .default_value(DEFAULT_PORT)
                .mutable_ready()
                .build(),
            glib::ParamSpecInt::builder("fd")
                .nick("File descriptor")
                .blurb(
                    "Already-connected fd for transport=fd (duplicated; the application keeps \
                     ownership of its copy)",
                )
                .minimum(-1)
                .default_value(-1)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("spice-port-name")
                .nick("SPICE port name")
                .blurb(
                    "transport=spice: name of the SPICE port channel (the guest's \
                     virtserialport / -chardev spiceport name)",
                )
                .default_value(Some(DEFAULT_SPICE_PORT_NAME))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("spice-password")
                .nick("SPICE password")
                .blurb("transport=spice: the SPICE server's ticket (none = no password)")
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("mode", default_mode)
                .nick("Mode")
                .blurb("Whether this end listens for the peer or connects to it")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("auth-token")
                .nick("Authentication token")
                .blurb("Shared secret the peer must present in its handshake (none = no check)")
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-message-size")
                .nick("Maximum message size")
                .blurb("Largest message (header + payload, bytes) accepted from the peer")
                .minimum(4096)
                .default_value(DEFAULT_MAX_MESSAGE_SIZE)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("heartbeat-interval")
                .nick("Heartbeat interval")
                .blurb("Milliseconds between two heartbeats sent to an idle peer")
                .minimum(10)
                .default_value(DEFAULT_HEARTBEAT_INTERVAL_MS)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("heartbeat-timeout")
                .nick("Heartbeat timeout")
                .blurb("Milliseconds of silence after which the peer is considered dead")
                .minimum(50)
                .default_value(DEFAULT_HEARTBEAT_TIMEOUT_MS)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                .nick("Statistics")
                .blurb(
                    "Counters: bytes, buffers and events each way, dropped buffers, reconnects, \
                     current credits, round-trip time, buffers sent or received by reference \
                     to shared memory (shm-buffers-zero-copy, shm-buffers-copied, \
                     shm-buffers-received)",
                )
                .read_only()
                .build(),
        ]
    }

    /// Applies one of [`EndpointSettings::properties`]; returns false if the name is not one.
    pub fn set_property(
        &mut self,
        value: &glib::Value,
        pspec: &glib::ParamSpec,
    ) -> Result<bool, String> {
        match pspec.name() {
            "uri" => {
                if let Some(uri) = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                {
                    self.set_uri(&uri)?;
                }
            }
            "transport" => self.transport = value.get().expect("type checked upstream"),
            "path" => self.path = value.get().expect("type checked upstream"),
            "host" => {
                self.host = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_HOST.to_owned())
            }
            "port" => self.port = value.get().expect("type checked upstream"),
            "fd" => self.fd = value.get().expect("type checked upstream"),
            "spice-port-name" => {
                self.spice_port_name = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_SPICE_PORT_NAME.to_owned())
            }
            "spice-password" => self.spice_password = value.get().expect("type checked upstream"),
            "mode" => self.mode = value.get().expect("type checked upstream"),
            "auth-token" => self.auth_token = value.get().expect("type checked upstream"),
            "max-message-size" => {
                self.max_message_size = value.get().expect("type checked upstream")
            }
            "heartbeat-interval" => {
                self.heartbeat_interval_ms = value.get().expect("type checked upstream")
            }
            "heartbeat-timeout" => {
                self.heartbeat_timeout_ms = value.get().expect("type checked upstream")
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn property(&self, pspec: &glib::ParamSpec) -> Option<glib::Value> {
        Some(match pspec.name() {
            "uri" => self.uri().to_value(),
            "transport" => self.transport.to_value(),
            "path" => self.path.to_value(),
            "host" => self.host.to_value(),
            "port" => self.port.to_value(),
            "fd" => self.fd.to_value(),
            "spice-port-name" => self.spice_port_name.to_value(),
            // A secret: set only, never read back.
            "spice-password" => None::<String>.to_value(),
            "mode" => self.mode.to_value(),
            "auth-token" => self.auth_token.to_value(),
            "max-message-size" => self.max_message_size.to_value(),
            "heartbeat-interval" => self.heartbeat_interval_ms.to_value(),
            "heartbeat-timeout" => self.heartbeat_timeout_ms.to_value(),
            _ => return None,
        })
    }
}
