//! The Prometheus remote-write 1.0 wire format: a protobuf `WriteRequest`, compressed with
//! snappy's block format. Only the fields plantwatch sends are declared (prost skips the rest
//! when decoding, as protobuf requires).

use prost::Message as _;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: the timestamp in UNIX milliseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The HTTP body of `request`: protobuf, then snappy (block format).
pub fn encode(request: &WriteRequest) -> Result<Vec<u8>, String> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .map_err(|e| format!("snappy: {e}"))
}

/// Reads a body written by [`encode`] (or any remote-write sender).
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_through_protobuf_and_snappy() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "plantwatch_ping_rtt_avg".into(),
                    },
                    Label {
                        name: "node".into(),
                        value: "plc-1".into(),
                    },
                ],
                samples: vec![
                    Sample {
                        value: 1.5,
                        timestamp: 1_700_000_000_123,
                    },
                    Sample {
                        value: -0.0,
                        timestamp: -1,
                    },
                ],
            }],
        };
        let body = encode(&request).unwrap();
        assert_eq!(decode(&body).unwrap(), request);
        assert!(decode(b"not snappy").is_err());
    }

    #[test]
    fn the_encoding_is_the_one_prometheus_defines() {
        // Field numbers and wire types from prometheus/prompb/types.proto: a sample is
        // 0x09 (field 1, 64-bit) + the double, 0x10 (field 2, varint) + the timestamp.
        let sample = Sample {
            value: 1.0,
            timestamp: 1,
        };
        assert_eq!(
            sample.encode_to_vec(),
            [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01]
        );
        let label = Label {
            name: "a".into(),
            value: "b".into(),
        };
        assert_eq!(label.encode_to_vec(), [0x0a, 1, b'a', 0x12, 1, b'b']);
    }
}
