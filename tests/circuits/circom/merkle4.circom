pragma circom 2.0.0;

// A toy 4-leaf "Merkle" root (issue 13 test circuit; not a real hash): H(a, b) = a^2 * b + a + 7.
template H() {
    signal input a;
    signal input b;
    signal output out;
    signal sq;
    sq <== a * a;
    out <== sq * b + a + 7;
}

template Merkle4() {
    signal input salt;
    signal input leaves[4];
    signal output root;
    component h[3];
    for (var i = 0; i < 3; i++) { h[i] = H(); }
    h[0].a <== leaves[0] + salt;
    h[0].b <== leaves[1];
    h[1].a <== leaves[2];
    h[1].b <== leaves[3];
    h[2].a <== h[0].out;
    h[2].b <== h[1].out;
    root <== h[2].out;
}

component main {public [salt]} = Merkle4();
