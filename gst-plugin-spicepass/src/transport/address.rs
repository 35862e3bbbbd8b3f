// SPDX-License-Identifier: MPL-2.0
//! Where the peer is, parsed from and printed as a `spicepass+<transport>://` URI.
//!
//! * `spicepass+unix:///run/x.sock`
//! * `spicepass+tcp://127.0.0.1:5000`
//! * `spicepass+fd://7` (an already-open, connected fd: socketpair or inherited)
//! * `spicepass+dev:///dev/virtio-ports/org.example.media` (char device / file opened read-write)
//! * `spicepass+spice://host:5930?port=org.mediapass.0[&password=SECRET]` (the guest's
//!   virtio-serial port reached through a SPICE server's port channel; connect only). The
//!   password is never printed back (logs, the `uri` property).
//!
//! `?mode=listen` or `?mode=connect` picks the side; without it the guest sink listens and
//! the client source connects.

use std::fmt;
use std::path::PathBuf;

/// Whether this end waits for the peer or goes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Listen,
    Connect,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Listen => "listen",
            Mode::Connect => "connect",
        }
    }
}

/// One peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
    Fd(i32),
    Device(PathBuf),
    Spice {
        host: String,
        port: u16,
        port_name: String,
        password: String,
    },
}

/// The SPICE port name used when the URI names none (the name the docs use for QEMU).
pub const DEFAULT_SPICE_PORT_NAME: &str = "org.mediapass.0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error(
        "'{0}' is not a spicepass URI (expected spicepass+unix://, +tcp://, +fd://, +dev:// or +spice://)"
    )]
    Scheme(String),
    #[error("'{0}': missing path")]
    MissingPath(String),
    #[error("'{0}': expected host:port")]
    HostPort(String),
    #[error("'{0}': expected a file descriptor number")]
    FdNumber(String),
    #[error(
        "'{0}': unknown query '{1}' (only mode=listen|connect; port= and password= for +spice)"
    )]
    Query(String, String),
}

impl Address {
    /// Parses a URI into the address and an explicit mode if the URI names one.
    pub fn parse_uri(uri: &str) -> Result<(Address, Option<Mode>), AddressError> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| AddressError::Scheme(uri.to_owned()))?;
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let scheme = scheme.to_ascii_lowercase();
        let mut mode = None;
        let mut spice_port_name = None;
        let mut spice_password = String::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("mode", "listen")) => mode = Some(Mode::Listen),
                Some(("mode", "connect")) => mode = Some(Mode::Connect),
                Some(("port", name)) if scheme == "spicepass+spice" && !name.is_empty() => {
                    spice_port_name = Some(name.to_owned())
                }
                Some(("password", pw)) if scheme == "spicepass+spice" => {
                    spice_password = pw.to_owned()
                }
                _ => return Err(AddressError::Query(uri.to_owned(), pair.to_owned())),
            }
        }
        let address = match scheme.as_str() {
            "spicepass+unix" => Address::Unix(non_empty_path(uri, body)?),
            "spicepass+dev" => Address::Device(non_empty_path(uri, body)?),
            "spicepass+tcp" => {
                let (host, port) = host_port(uri, body)?;
                Address::Tcp { host, port }
            }
            "spicepass+spice" => {
                let (host, port) = host_port(uri, body)?;
                Address::Spice {
                    host,
                    port,
                    port_name: spice_port_name.unwrap_or_else(|| DEFAULT_SPICE_PORT_NAME.into()),
                    password: spice_password,
                }
            }
            "spicepass+fd" => Address::Fd(
                body.trim_end_matches('/')
                    .parse::<i32>()
                    .ok()
                    .filter(|fd| *fd >= 0)
                    .ok_or_else(|| AddressError::FdNumber(uri.to_owned()))?,
            ),
            _ => return Err(AddressError::Scheme(uri.to_owned())),
        };
        Ok((address, mode))
    }

    /// The URI naming this address (and mode, when given).
    pub fn to_uri(&self, mode: Option<Mode>) -> String {
        let base = self.to_string();
        let separator = if base.contains('?') { '&' } else { '?' };
        match mode {
            Some(m) => format!("{base}{separator}mode={}", m.as_str()),
            None => base,
        }
    }

    /// Short transport name, as the `transport` property spells it.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Address::Unix(_) => "unix",
            Address::Tcp { .. } => "tcp",
            Address::Fd(_) => "fd",
            Address::Device(_) => "dev",
            Address::Spice { .. } => "spice",
        }
    }
}

fn host_port(uri: &str, body: &str) -> Result<(String, u16), AddressError> {
    let (host, port) = body
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(|| AddressError::HostPort(uri.to_owned()))?;
    let port = port
        .parse()
        .map_err(|_| AddressError::HostPort(uri.to_owned()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(AddressError::HostPort(uri.to_owned()));
    }
    Ok((host.to_owned(), port))
}

fn non_empty_path(uri: &str, body: &str) -> Result<PathBuf, AddressError> {
    if body.is_empty() {
        Err(AddressError::MissingPath(uri.to_owned()))
    } else {
        Ok(PathBuf::from(body))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "spicepass+unix://{}", p.display()),
            Address::Device(p) => write!(f, "spicepass+dev://{}", p.display()),
            Address::Tcp { host, port } if host.contains(':') => {
                write!(f, "spicepass+tcp://[{host}]:{port}")
            }
            Address::Tcp { host, port } => write!(f, "spicepass+tcp://{host}:{port}"),
            Address::Fd(fd) => write!(f, "spicepass+fd://{fd}"),
            Address::Spice {
                host,
                port,
                port_name,
                ..
            } if host.contains(':') => {
                write!(f, "spicepass+spice://[{host}]:{port}?port={port_name}")
            }
            Address::Spice {
                host,
                port,
                port_name,
                ..
            } => write!(f, "spicepass+spice://{host}:{port}?port={port_name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_transport() {
        assert_eq!(
            Address::parse_uri("spicepass+unix:///run/x.sock").unwrap(),
            (Address::Unix("/run/x.sock".into()), None)
        );
        assert_eq!(
            Address::parse_uri("spicepass+tcp://127.0.0.1:5000?mode=listen").unwrap(),
            (
                Address::Tcp {
                    host: "127.0.0.1".into(),
                    port: 5000
                },
                Some(Mode::Listen)
            )
        );
        assert_eq!(
            Address::parse_uri("spicepass+fd://7").unwrap(),
            (Address::Fd(7), None)
        );
        assert_eq!(
            Address::parse_uri("spicepass+dev:///dev/virtio-ports/x?mode=connect").unwrap(),
            (
                Address::Device("/dev/virtio-ports/x".into()),
                Some(Mode::Connect)
            )
        );
    }

    #[test]
    fn parses_spice_with_port_name_and_password_and_never_prints_the_password() {
        let (a, mode) =
            Address::parse_uri("spicepass+spice://10.0.0.2:5930?port=org.x.1&password=s3cr3t")
                .unwrap();
        assert_eq!(
            a,
            Address::Spice {
                host: "10.0.0.2".into(),
                port: 5930,
                port_name: "org.x.1".into(),
                password: "s3cr3t".into()
            }
        );
        assert_eq!(mode, None);
        assert_eq!(
            a.to_string(),
            "spicepass+spice://10.0.0.2:5930?port=org.x.1"
        );
        assert_eq!(
            a.to_uri(Some(Mode::Connect)),
            "spicepass+spice://10.0.0.2:5930?port=org.x.1&mode=connect"
        );
        let (default_name, _) = Address::parse_uri("spicepass+spice://h:1").unwrap();
        assert!(
            matches!(default_name, Address::Spice { ref port_name, .. } if port_name == DEFAULT_SPICE_PORT_NAME)
        );
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "file:///x",
            "spicepass+unix://",
            "spicepass+tcp://nohost",
            "spicepass+tcp://:5",
            "spicepass+tcp://h:99999",
            "spicepass+fd://-1",
            "spicepass+fd://x",
            "spicepass+unix:///x?mode=sideways",
            "spicepass+unix:///x?password=p",
            "spicepass+spice://h",
            "spicepass+spice://h:1?port=",
            "spicepass+spice://h:1?colour=red",
            "no scheme",
        ] {
            assert!(Address::parse_uri(bad).is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn uri_round_trips(
            path in "/[a-z0-9_./-]{1,40}",
            host in "[a-z0-9.]{1,20}",
            port: u16,
            fd in 0i32..100_000,
            mode in prop::option::of(prop_oneof![Just(Mode::Listen), Just(Mode::Connect)]),
        ) {
            for a in [
                Address::Unix(path.clone().into()),
                Address::Device(path.clone().into()),
                Address::Tcp { host: host.clone(), port },
                Address::Fd(fd),
                Address::Spice {
                    host: host.clone(),
                    port,
                    port_name: "org.mediapass.0".into(),
                    password: String::new(),
                },
            ] {
                prop_assert_eq!(Address::parse_uri(&a.to_uri(mode)).unwrap(), (a, mode));
            }
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = Address::parse_uri(&s);
        }
    }
}
