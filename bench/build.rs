//! Compiles the benchmark's `.rpc` through the idlc library, as users do.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    idlc::Builder::new().compile(&["idl/echo.rpc"])?;
    Ok(())
}
