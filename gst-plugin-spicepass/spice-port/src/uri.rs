// SPDX-License-Identifier: MPL-2.0
//! `spice://host:port[?password=SECRET]`.

use crate::error::Error;

#[derive(Clone, PartialEq, Eq)]
pub struct SpiceUri {
    pub host: String,
    pub port: u16,
    /// Empty when the server runs with `disable-ticketing=on`.
    pub password: String,
}

// The password stays out of logs.
impl std::fmt::Debug for SpiceUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spice://{}", self.authority())?;
        if !self.password.is_empty() {
            f.write_str("?password=***")?;
        }
        Ok(())
    }
}

impl SpiceUri {
    pub fn parse(uri: &str) -> Result<Self, Error> {
        let bad = |why| Error::Uri {
            uri: uri.split('?').next().unwrap_or_default().to_owned(),
            why,
        };
        let rest = uri.strip_prefix("spice://").ok_or_else(|| bad("scheme"))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| bad("missing :port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
        let mut password = String::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("password", value)) => password = value.to_owned(),
                _ => return Err(bad("unknown query (only password=)")),
            }
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            password,
        })
    }

    /// `host:port`, bracketing IPv6 literals, for `TcpStream::connect`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_password() {
        let u = SpiceUri::parse("spice://127.0.0.1:5930").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.password.as_str()),
            ("127.0.0.1", 5930, "")
        );
        let u = SpiceUri::parse("spice://[::1]:5900/?password=pw").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.password.as_str()),
            ("::1", 5900, "pw")
        );
        assert_eq!(u.authority(), "[::1]:5900");
        assert!(
            !format!("{u:?}").contains("pw"),
            "password leaked into Debug"
        );
    }

    #[test]
    fn rejects_the_rest() {
        for bad in [
            "spicy://h:1",
            "spice://h",
            "spice://:1",
            "spice://h:99999",
            "spice://h:1?tls-port=2",
        ] {
            assert!(SpiceUri::parse(bad).is_err(), "{bad}");
        }
        let e = SpiceUri::parse("spice://h:x?password=secret").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
