//! Reading a daemon's `GET /metrics` as Prometheus does: the devnet's
//! summary reads its figures there, and `bench broker` scrapes while it
//! measures.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body of `GET /metrics` from `addr`.
pub async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: aztec-prover\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other("no HTTP answer"));
    };
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "answered {}",
            head.lines().next().unwrap_or_default()
        )));
    }
    Ok(body.to_string())
}

/// The sum of every series of `name` whose labels contain `label` (all
/// series with None), in Prometheus text.
pub fn sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            label
                .is_none_or(|want| labels.contains(want))
                .then(|| value.trim().parse::<f64>().ok())?
        })
        // Folded from +0: `Sum` of floats starts at -0, which prints "-0"
        // for a series that is absent.
        .fold(0.0, |a, b| a + b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn series_are_summed_by_name_and_label() {
        let text = "# HELP x\n\
            aztec_prover_node_epochs_total{outcome=\"proven\",otel_scope_name=\"a\"} 2\n\
            aztec_prover_node_epochs_total{outcome=\"failed\",otel_scope_name=\"a\"} 1\n\
            aztec_prover_node_epochs_total_other 7\n\
            aztec_prover_node_l1_gas_total 12.5\n";
        assert_eq!(
            super::sum(text, "aztec_prover_node_epochs_total", None),
            3.0
        );
        assert_eq!(
            super::sum(
                text,
                "aztec_prover_node_epochs_total",
                Some("outcome=\"proven\"")
            ),
            2.0
        );
        assert_eq!(
            super::sum(text, "aztec_prover_node_l1_gas_total", None),
            12.5
        );
        assert_eq!(super::sum(text, "missing", None), 0.0);
        // An absent series prints as 0, not -0.
        assert_eq!(super::sum(text, "missing", None).to_string(), "0");
    }
}
