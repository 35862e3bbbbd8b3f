// SPDX-License-Identifier: MPL-2.0
//! Parsing of `gst-inspect-1.0` output, as a user reads it.

/// What `gst-inspect-1.0 <plugin>` says about a plugin.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PluginDetails {
    pub name: String,
    pub filename: String,
    pub description: String,
    pub license: String,
    pub source_module: String,
    pub elements: Vec<String>,
}

/// What `gst-inspect-1.0 <element>` says about an element: factory details and properties.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ElementDetails {
    pub factory: Vec<(String, String)>,
    /// (property name, blurb)
    pub properties: Vec<(String, String)>,
}

impl ElementDetails {
    pub fn factory_field(&self, key: &str) -> Option<&str> {
        self.factory
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn key_value(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    let (key, value) = line.split_once(char::is_whitespace)?;
    Some((key.to_string(), value.trim().to_string()))
}

/// Parses the output of `gst-inspect-1.0 <plugin-name>`.
pub fn parse_plugin(text: &str) -> PluginDetails {
    let mut details = PluginDetails::default();
    let mut in_details = false;
    for line in text.lines() {
        if line.starts_with("Plugin Details:") {
            in_details = true;
            continue;
        }
        if in_details {
            if line.trim().is_empty() {
                in_details = false;
                continue;
            }
            if let Some((key, value)) = key_value(line) {
                match key.as_str() {
                    "Name" => details.name = value,
                    "Filename" => details.filename = value,
                    "Description" => details.description = value,
                    "License" => details.license = value,
                    "Source" => {
                        if let Some(v) = value.strip_prefix("module") {
                            details.source_module = v.trim().to_string();
                        }
                    }
                    _ => {}
                }
            }
            continue;
        }
        // Feature lines: "  name: Long name"
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
            && let Some((name, _long)) = rest.split_once(": ")
            && !name.contains(' ')
            && !name.is_empty()
        {
            details.elements.push(name.to_string());
        }
    }
    details
}

/// Parses the output of `gst-inspect-1.0 <element-name>`.
pub fn parse_element(text: &str) -> ElementDetails {
    #[derive(PartialEq)]
    enum Section {
        Other,
        Factory,
        Properties,
    }
    let mut details = ElementDetails::default();
    let mut section = Section::Other;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            section = match line.trim_end_matches(':') {
                "Factory Details" => Section::Factory,
                "Element Properties" => Section::Properties,
                _ => Section::Other,
            };
            continue;
        }
        match section {
            Section::Factory => {
                if let Some((k, v)) = key_value(line) {
                    details.factory.push((k, v));
                }
            }
            Section::Properties => {
                // A property starts at an indent of exactly two: "  name   : blurb"
                let Some(rest) = line.strip_prefix("  ") else {
                    continue;
                };
                if rest.starts_with(' ') {
                    continue;
                }
                if let Some((name, blurb)) = rest.split_once(':') {
                    details
                        .properties
                        .push((name.trim().to_string(), blurb.trim().to_string()));
                }
            }
            Section::Other => {}
        }
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = "Plugin Details:
  Name                     coreelements
  Description              GStreamer core elements
  Filename                 /usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstcoreelements.so
  Version                  1.22.0
  License                  LGPL
  Source module            gstreamer

  capsfilter: CapsFilter
  fakesink: Fake Sink

  2 features:
  +-- 2 elements

";

    #[test]
    fn parses_plugin_details_and_features() {
        let p = parse_plugin(PLUGIN);
        assert_eq!(p.name, "coreelements");
        assert_eq!(p.license, "LGPL");
        assert_eq!(p.source_module, "gstreamer");
        assert_eq!(p.elements, ["capsfilter", "fakesink"]);
    }

    const ELEMENT: &str = "Factory Details:
  Rank                     none (0)
  Long-name                Fake Sink
  Klass                    Sink
  Description              Black hole for data
  Author                   Somebody

Element Properties:

  async               : Go asynchronously to PAUSED
                        flags: readable, writable
                        Boolean. Default: true
  bad                 : 
                        flags: readable
";

    #[test]
    fn parses_factory_and_property_blurbs() {
        let e = parse_element(ELEMENT);
        assert_eq!(e.factory_field("Long-name"), Some("Fake Sink"));
        assert_eq!(e.factory_field("Klass"), Some("Sink"));
        assert_eq!(
            e.properties,
            vec![
                (
                    "async".to_string(),
                    "Go asynchronously to PAUSED".to_string()
                ),
                ("bad".to_string(), String::new())
            ]
        );
    }
}
