//! Just enough XML for the vSphere SOAP answers: a tree of elements by local name (namespace
//! prefixes dropped), with their `type` attribute (`obj type="HostSystem"`, `xsi:type`) and
//! their text, entities resolved. Requests are written by hand with [`escape`].

use quick_xml::events::Event;

/// One element of an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// Local name (`returnval`, `propSet`).
    pub name: String,
    /// The `type` attribute's value, whatever its prefix (`xsi:type` or plain `type`).
    pub kind: Option<String>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the child at `path` (names separated by `/`), if there is one.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        let mut at = self;
        for name in path.split('/') {
            at = at.child(name)?;
        }
        Some(at.text.as_str())
    }

    /// The first element named `name` at any depth, this one included.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// The tree of `text`, or why it is no XML.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("bad XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let mut element = Element {
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for attribute in start.attributes().flatten() {
                    if attribute.key.local_name().as_ref() != b"type" {
                        continue;
                    }
                    // A reference carries both: `xsi:type="ManagedObjectReference"` and
                    // `type="HostSystem"`; the plain one is the object's type.
                    let plain = attribute.key.as_ref() == b"type";
                    if plain || element.kind.is_none() {
                        let value = attribute
                            .unescape_value()
                            .map_err(|e| format!("bad attribute: {e}"))?;
                        element.kind = Some(value.into_owned());
                    }
                }
                if empty {
                    stack
                        .last_mut()
                        .ok_or("unbalanced XML")?
                        .children
                        .push(element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("unbalanced XML")?;
                stack
                    .last_mut()
                    .ok_or("unbalanced XML")?
                    .children
                    .push(element);
            }
            Event::Text(text) => {
                let decoded = text.decode().map_err(|e| format!("bad text: {e}"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&decoded);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => {
                        let name = reference.decode().map_err(|e| format!("bad entity: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                    }
                };
                if let (Some(top), Some(resolved)) = (stack.last_mut(), resolved) {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("the answer ended inside an element".into());
    }
    let mut root = stack.pop().unwrap_or_default();
    // Whitespace between elements is no text.
    fn trim(element: &mut Element) {
        if !element.children.is_empty() && element.text.trim().is_empty() {
            element.text.clear();
        }
        element.children.iter_mut().for_each(trim);
    }
    trim(&mut root);
    Ok(root)
}

/// `text` escaped for an element's content or an attribute.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_elements_with_types_and_text() {
        let root = parse(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="x" xmlns:xsi="y">
            <soapenv:Body><RetrievePropertiesExResponse><returnval>
              <objects><obj type="HostSystem">host-21</obj>
                <propSet><name>name</name><val xsi:type="xsd:string">esx &amp; 1&#46;plant</val></propSet>
                <propSet><name>runtime.inMaintenanceMode</name><val xsi:type="xsd:boolean">false</val></propSet>
              </objects><token/></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#,
        )
        .unwrap();
        let objects = root.find("objects").unwrap();
        let obj = objects.child("obj").unwrap();
        assert_eq!(
            (obj.kind.as_deref(), obj.text.as_str()),
            (Some("HostSystem"), "host-21")
        );
        let names: Vec<_> = objects
            .all("propSet")
            .map(|p| (p.text_at("name").unwrap(), p.text_at("val").unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("name", "esx & 1.plant"),
                ("runtime.inMaintenanceMode", "false")
            ]
        );
        assert_eq!(root.find("token").map(|t| t.text.as_str()), Some(""));
        let reference = parse(r#"<val xmlns:xsi="x" xsi:type="ManagedObjectReference" type="ClusterComputeResource">domain-c7</val>"#).unwrap();
        assert_eq!(
            reference.children[0].kind.as_deref(),
            Some("ClusterComputeResource")
        );
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
