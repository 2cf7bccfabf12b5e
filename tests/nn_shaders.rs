//! Every WGSL module of the nn ops (every specialization of every matmul variant included) parses and
//! validates with naga.

#[test]
fn nn_modules_validate() {
    for (name, source) in coptim::nn::shader_modules() {
        let source = source.as_str();
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    }
}
