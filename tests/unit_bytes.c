/* unit_bytes.c - the bytes layer of chat.h: growable buffer, SHA-1, base64, UTF-8 validation.
   Expected digests were computed independently (sha1sum / Python hashlib) and are hard-coded. */

/* Lower-case hex of n bytes into out (2n + 1 chars). */
static void ub_hex(const unsigned char *d, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) out[2 * i] = hex[d[i] >> 4], out[2 * i + 1] = hex[d[i] & 15];
    out[2 * n] = '\0';
}

static void ub_sha1_hex(const void *data, size_t n, char out[41]) {
    unsigned char digest[20];
    chat_sha1(data, n, digest);
    ub_hex(digest, 20, out);
}

/* --- SHA-1 --- */

static void test_sha1_rfc3174_vectors(void) {
    static const char rep[] = "0123456701234567012345670123456701234567012345670123456701234567";
    char hex[41];
    unsigned char *buf;
    size_t i;
    ub_sha1_hex("abc", 3, hex);
    CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    ub_sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    CHECK_STR(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    buf = (unsigned char *)malloc(1000000);
    CHECK(buf != NULL);
    if (!buf) return;
    memset(buf, 'a', 1000000);
    ub_sha1_hex(buf, 1000000, hex);
    CHECK_STR(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    for (i = 0; i < 10; i++) memcpy(buf + 64 * i, rep, 64);
    ub_sha1_hex(buf, 640, hex);
    CHECK_STR(hex, "dea356a2cddd90c7a7ecedc5ebb563934f460452");
    free(buf);
}

static void test_sha1_empty_string(void) {
    char hex[41];
    ub_sha1_hex("", 0, hex);
    CHECK_STR(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

/* SHA-1 of the first n bytes of ("abcdefghijklmnopqrstuvwxyz0123456789" x 5), n = 0..130. */
static const char *const ub_sha1_prefix_digests[131] = {
    "da39a3ee5e6b4b0d3255bfef95601890afd80709", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8",
    "da23614e02469a0d7c7bd1bdab5c9c474b1904dc", "a9993e364706816aba3e25717850c26c9cd0d89d",
    "81fe8bfe87576c3ecb22426f8e57847382917acf", "03de6c570bfe24bfc328ccd7ca46b76eadaf4334",
    "1f8ac10f23c5b5bc1167bda84b833e5c057a77d2", "2fb5e13419fc89246865e7a324f476ec624e8740",
    "425af12a0743502b322e93a015bcf868e324d56a", "c63b19f1e4c8b5f76b25c49b8b87f57d8e4872a1",
    "d68c19a0a345b7eab78d5e11e991c026ec60db63", "5dfac39f71ad4d35a153ba4fc12d943a0e178e6a",
    "eb4608cebfcfd4df81410cbd06507ea6af978d9c", "4b9892b6527214afc655b8aa52f4d203c15e7c9c",
    "85d7c5ff403abe72df5b8a2708821ee33cd0bcce", "2938dcc2e3aa77987c7e5d4a0f26966706d06782",
    "14f3995288acd189e6e50a7af47ee7099aa682b9", "d83d621fcd2d4d2985547043a7a5fd4d0a090a54",
    "e381fe42c57e48a082178641effd1cb90771021a", "893e69ff0109f3459c4243013b3de8b12b41a30e",
    "14a23ad70f2a5dd725575de6c43e1cdd8b15e3e5", "eca986b95d587f34d71ca7752a4e0010bfb5c6f4",
    "c436f0485bf34625ff7764ead634bccd875b514d", "f41a73ec7a087859800f5c4cbf71e94487346b6c",
    "d717e22e1659305fad6ef08864923db64aba9c08", "97b2cc05c4620ebf4ce1330623b950a4a171f7e2",
    "32d10c7b8cf96570ca04ce37f2a19d84240d3a89", "1f06dac650d75bea9c5fc39501cbee940a9840b6",
    "cee916fb7b45ac3f1eb0ec5fd2e89590e91c5340", "16ef74baddb4e6df5093d195e8cc2a4c6a13f0df",
    "c2d4d1a28f23979da6a624eaa341f09cacfd120a", "5bfeaef7ffac97436977763e1c4d109bcdddc098",
    "a3eb15172cc7e6090a2eb32e6dc8c3bd30c39a02", "6827cf9752e8a116ed5ced73befafc0f4b8e162a",
    "ab70fab3b46c53185ff80b0814cbba65df0be2b9", "ba084b76039a36e2b8937db5b0ce13af7283b327",
    "d2985049a677bbc4b4e8dea3b89c4820e5668e3a", "6af52b85b52bf1c9ade84857f54c7483d8066c6f",
    "e402fc87beeb7840b3002c9bdd45766af9b43bf2", "ae8f228d052f50c440e786a6fae7b07a10e76663",
    "c3d6071f13c692bedcbbc34700d6a1f57116b125", "80899fd7d6267f7cbdaf297fb2d9d582465e821c",
    "f3c7c7f1efd9544c53c103e0d440c4187ebc4be6", "386cf877156d06eb071eab31bb0b6b8081e711c8",
    "5e8794be9c7b72833ef379fd0fcdbc9004e24da4", "2357aaf076e468859e41e447be07c9e2c85a9478",
    "1e67fb73b6ba0884441a424285eda8fab15a7443", "d63f05ac018cab0f71976007de36918a552217f9",
    "23f5a661b9400a66a5b3e64ffe0616a2ca70e3dd", "fb316b451581a11b96192cca4be6b5279b824137",
    "ccf95a772bbea29403825e8a0910c3ca12f4a26e", "f3b61b66e7a48473522547fd70f93f8303b20685",
    "409a2511bebe517ab8c6d3d7140715c7d0d067ae", "f9b94d164fec0708be35a90c02154fecf5a74676",
    "6f1c7854008b5a190f7f0c6c29e4c747faba77a4", "9417250bc0374774aca7eb68c46fb2e973625354",
    "f26289a06d084688d78a5afd746377c5697b2283", "7c2bc8aa756bb8a6f947432525f9a87c2985b0d2",
    "53c5a5eb47f4a8820ca8066d399c94838712623e", "a613cbacfd2dd5bc71af515dff36adae25e52222",
    "ab53442a399359bff44d1a5d6ad90ef17539da17", "0790d829ae497ac42cd00faa8047c20da0d86bc3",
    "7b3393fe8bf388437738a0e08a4cc2ba972ad32e", "895811cf8168d800dfd5eeac937947ef1a71a92a",
    "54396de580466a1e29f03d1131851484a596192a", "52702aaee39ca9c001e3c0e8f3a0ab58f39b13a1",
    "5bef7b9b862c7ece7e9f2ac57e8c76670cbad61d", "9ded21d72dc0a8c56913461a9e3b52e764b1a853",
    "91d0a9b8ddb3cf50d86f748d9b15857de2285a55", "dcc74f7bb6dc7baeb036db32966d4597d9a86a69",
    "f172f5d0ecb396336d7cad9536c8e0891cef84f2", "67e601ae253e515706cfba52ccb557dac28c76eb",
    "1a048dc6f0a76b38525883186d0b3b2b91054b16", "ddbfa5b116c24326e89f20c271295e11dfbad5f3",
    "27b687268e31f00704bb3045bcbf17a5f038deb8", "68122cf1440c797fa87a9b8d454a3de2ffbb0235",
    "39f9611055a47d3eac0117625af4c72ba0050f7a", "e780361eb35901b724a0d48b15d33b56f5e68170",
    "8b601b9713ccc0b5d31a41ee0c8a7234ee9a27fd", "ad1a8d339f3dbbc2a0686e5036168ecafb7c39f4",
    "42922eed7ae70f433aef621be575bbc8b3a29181", "209b6e7a2f875610d469533792079de30ba12eb6",
    "41ce69bcb76f5b4e3d293a58e7e94086282e63b5", "9edec7553a6bd12a97afbe7509711d0ef39c8bf1",
    "b095c00366f791795c7d3d5e12a5451c43d5569d", "7d65e1e8dd4b84414d060598d4baa073e131d09f",
    "14635c9a8ab81ad444905cbcc88af8a975c50317", "e41eff2ca7e08cc13c003658bbd7ebed39c1458d",
    "a4930aae6a651f4bfc217d472bc64b80050ba4b9", "d45f33295c7091cfeace06b9d173accfab38c6e8",
    "f37ccb3175136d35cf9107a60050bbb5f850f54b", "2a840f7c3f0976e68cd4a76d7900d5ed0f0e35b7",
    "ed96848e455076f9830323af5d0e21469f2af69f", "91fd9c083dda8a04c16488d36d7a62b6cb3eb1c8",
    "bd20f87817e9601dca4a610c7701402324495480", "4bf72ff5df2fca31efac599d60ee6edcae1ae63e",
    "ce5336264fa574dc6dbbf452688fc9b55614b0d4", "fd36e7e57edb2559dac000ff425384202f41b944",
    "cc2db06eb2bb64cd65bed0b650a422fef324d0be", "5a20f8d7cc34980df1eb3926fa85c51372f03d7a",
    "c1c5e29cfe526548c05f1584e880cad90f21bae0", "0a5f3debe1f80aba43c65242e56a7fb6f894abb9",
    "7dbd94dee27024d7ae3e2facbdbc56b7b044adf5", "0acd70f5755f1ac96e1ee98ac51bd994664ddb7f",
    "6bbba52acff3e8059e2333be4c072bb91879643a", "56347874a514cbcc91b1291c77ec6ecb80948621",
    "9d3f3492d8cd38348680ab3e43bda9d2d8bd5904", "5abe52fa806741ee56708be2540fb0cb3c7fd1d7",
    "f6e37178109fd025ff9fd909755b35e4faafde21", "8f538c1a19fe59e028066806e41b2793bb8e0e9f",
    "93efcc446433b1a30e97bed96e1d693cc46b9884", "5318898803498bac5204c15778ef1baac151caea",
    "15eefa16e4bf71a06708be6cdb38e50283c54fed", "5c5a742c4d100202b3be99bb232d3be8547b38df",
    "442be3b940bb7985a4ea1ca83ca83bacba9c3c9e", "fcf55f2cc011ce3bbdfdd28fd8a2c33a02f14b9c",
    "bf7cc91edbe7e1ac973c82d31445725883a89b11", "228c21864ebdc2636c061fe79f16ecc2e2b23d5b",
    "b10e1a95183c2eeb1df3c20e7976bd3b74be55bf", "27004477a4803f6653334ad939288a8960b6868e",
    "91d9b0f39f8ea0159f4a6584085e08395b96ce9b", "9254c8fa8e8442d3fbad9aeed95bc34b2f6a8b2e",
    "744f1bbb6ec25c244a3442617c2a20dee003af94", "7b982dd5a56791ca9632d0f889131577552039ae",
    "4cebe8745916043fdb6c39f300e75841ffe72480", "e7b56a3414fc177617d6634c59ed707fe1807e32",
    "8aaa5caa972fbbc34103351ba5f56f5dc0999fe4", "12fc49067e629006aab47badadc67cde768dc8fc",
    "33a45ca3bec3ea6c3582f27fab63a941de4e4943", "a520b3f6cd3740d5f8b991076e50f30271e91cf4",
    "e73048d4c3daacdcdda4402489007684ecd2711f",
};

static void test_sha1_every_length_0_to_130(void) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char input[131], hex[41];
    size_t n;
    for (n = 0; n < sizeof input; n++) input[n] = alphabet[n % 36];
    for (n = 0; n <= 130; n++) {
        ub_sha1_hex(input, n, hex);
        CHECKF(strcmp(hex, ub_sha1_prefix_digests[n]) == 0, "length %zu: %s != %s", n, hex,
               ub_sha1_prefix_digests[n]);
    }
}

/* The padding edges (one block vs two for the tail) with high bytes, where a sign slip shows. */
static void test_sha1_padding_edges_with_high_bytes(void) {
    static const struct { size_t n; const char *ff, *x80; } cases[] = {
        {55, "450732ec1ec8fc5594a29700e11c37f09622ed72", "31792935405f75ca6a9af2280f3cba26fde11c85"},
        {56, "09cade8bfcfc501cb097636504dff46b39270658", "416a603b399ddd4c9482b30c7fd75e217c03664f"},
        {63, "b5419e99e3ea50f812d56149e29b6d7db7bfc70e", "235b93e53433555dfc69eea9ddc94923e5d8ac4a"},
        {64, "ffc6261e487efa8c7442069f71acfc4aa826993d", "0cc1589e44da9e608c92c07e8966e94fb9270492"},
        {65, "bf0822f91c1aeaee3a06c8a6c598b0229e7fb2f3", "d3d76c21215a9d281b676a947ab8539b9151d4c9"},
        {119, "97b433c99a75e69bd8170ef41aacbfb370434b0d", "ec8e53ba2308cab914603fe7d993c5990abaee3f"},
        {120, "b099d503d1c2bdf6defb88f6368bde6a6e71c448", "1eedab7c8606002c246112c4faac4a4ae820cf39"},
        {127, "a1cb04cd174139d68f4386c25e88ec3d002cfb2d", "764f1ad6622e1fce61ab1f439bc092f5e79635e8"},
        {128, "cd5bd20e9a0f22d7367cc169e2844a02751c7c91", "5cca49043d9ed532d834e097dc5ca2171dae02f4"},
    };
    unsigned char ff[128], x80[128];
    char hex[41];
    size_t i;
    memset(ff, 0xFF, sizeof ff);
    memset(x80, 0x80, sizeof x80);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ub_sha1_hex(ff, cases[i].n, hex);
        CHECKF(strcmp(hex, cases[i].ff) == 0, "0xFF x %zu: %s != %s", cases[i].n, hex, cases[i].ff);
        ub_sha1_hex(x80, cases[i].n, hex);
        CHECKF(strcmp(hex, cases[i].x80) == 0, "0x80 x %zu: %s != %s", cases[i].n, hex, cases[i].x80);
    }
}

/* --- base64 --- */

static const char *const ub_b64_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const ub_b64_coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_base64_encode_rfc4648_vectors(void) {
    char out[16];
    size_t i;
    for (i = 0; i < 7; i++) {
        size_t n;
        memset(out, 'X', sizeof out);
        n = chat_base64_encode((const unsigned char *)ub_b64_plain[i], strlen(ub_b64_plain[i]), out);
        CHECK_INT(n, strlen(ub_b64_coded[i]));
        CHECK_STR(out, ub_b64_coded[i]); /* also checks the NUL terminator */
    }
}

static void test_base64_decode_rfc4648_vectors(void) {
    unsigned char out[16];
    size_t i;
    for (i = 0; i < 7; i++) {
        long n = chat_base64_decode(ub_b64_coded[i], strlen(ub_b64_coded[i]), out, sizeof out);
        CHECK_INT(n, (long)strlen(ub_b64_plain[i]));
        if (n >= 0) CHECK_MEM(out, (size_t)n, ub_b64_plain[i], strlen(ub_b64_plain[i]));
    }
}

static void test_base64_decode_rejects_wrong_length(void) {
    static const char *const bad[] = {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg=", "Zm9vYmFy="};
    unsigned char out[16];
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(chat_base64_decode(bad[i], strlen(bad[i]), out, sizeof out) == -1, "accepted \"%s\"", bad[i]);
}

static void test_base64_decode_rejects_bad_characters(void) {
    static const char *const bad[] = {"Zm9v!A==", "Zm-v", "Zm_v", "Zm9 ", " Zm9", "Zm\n9", "Zm9v\r\n==",
                                      "Zm.v", "Zm9\x80", "Zm9\xff"};
    unsigned char out[16];
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(chat_base64_decode(bad[i], strlen(bad[i]), out, sizeof out) == -1, "accepted \"%s\"", bad[i]);
    /* an embedded NUL is a bad character too */
    CHECK_INT(chat_base64_decode("Zm\0v", 4, out, sizeof out), -1);
}

static void test_base64_decode_rejects_padding_in_the_middle(void) {
    static const char *const bad[] = {"Zg==Zg==", "Zm8=Zm9v", "Z===", "====", "Zm=v", "=m9v", "Zm9v====",
                                      "Zg==AAAA"};
    unsigned char out[16];
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(chat_base64_decode(bad[i], strlen(bad[i]), out, sizeof out) == -1, "accepted \"%s\"", bad[i]);
}

static void test_base64_decode_rejects_noncanonical_trailing_bits(void) {
    /* "Zg==" and "Zm8=" are canonical; the others have nonzero unused bits */
    static const char *const bad[] = {"Zh==", "Zv==", "Zm9=", "Zm9vYh==", "Zm9vYmF=", "AB==", "AAB="};
    unsigned char out[16];
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(chat_base64_decode(bad[i], strlen(bad[i]), out, sizeof out) == -1, "accepted \"%s\"", bad[i]);
    /* all bits used: fine */
    CHECK_INT(chat_base64_decode("Zm//", 4, out, sizeof out), 3);
    CHECK_MEM(out, 3, "\x66\x6f\xff", 3);
    CHECK_INT(chat_base64_decode("AA==", 4, out, sizeof out), 1);
    CHECK_INT(out[0], 0);
}

static void test_base64_decode_respects_capacity(void) {
    unsigned char out[8];
    memset(out, 0xAA, sizeof out);
    CHECK_INT(chat_base64_decode("Zm9vYmFy", 8, out, 5), -1);
    CHECK_INT(chat_base64_decode("Zm9vYmE=", 8, out, 4), -1);
    CHECK_INT(chat_base64_decode("Zm9vYg==", 8, out, 3), -1);
    CHECK_INT(chat_base64_decode("Zg==", 4, out, 0), -1);
    CHECK_INT(out[5], 0xAA); /* nothing written past the capacity given */
    CHECK_INT(chat_base64_decode("Zm9vYmFy", 8, out, 6), 6);
    CHECK_MEM(out, 6, "foobar", 6);
    CHECK_INT(out[6], 0xAA);
    CHECK_INT(chat_base64_decode("Zm9vYg==", 8, out, 4), 4);
    CHECK_INT(chat_base64_decode("", 0, out, 0), 0);
}

static void test_base64_16_byte_key_round_trips(void) {
    unsigned char key[16], back[16];
    char text[25];
    size_t i;
    for (i = 0; i < 16; i++) key[i] = (unsigned char)i;
    CHECK_INT(chat_base64_encode(key, 16, text), 24);
    CHECK_STR(text, "AAECAwQFBgcICQoLDA0ODw==");
    CHECK_INT(chat_base64_decode(text, 24, back, sizeof back), 16);
    CHECK_MEM(back, 16, key, 16);
    for (i = 0; i < 16; i++) key[i] = (unsigned char)(0xFF - 17 * i);
    chat_base64_encode(key, 16, text);
    CHECK_INT(chat_base64_decode(text, 24, back, sizeof back), 16);
    CHECK_MEM(back, 16, key, 16);
}

/* Every byte value, every length 0..64: encode then decode gives the input back. */
static void test_base64_round_trips_all_byte_values(void) {
    unsigned char in[64], back[64];
    char text[4 * 22 + 1];
    size_t n, i;
    for (n = 0; n <= 64; n++) {
        size_t len;
        long got;
        for (i = 0; i < n; i++) in[i] = (unsigned char)(n * 37 + i * 101 + 255 * (i & 1));
        len = chat_base64_encode(in, n, text);
        CHECKF(len == 4 * ((n + 2) / 3), "length %zu encodes to %zu chars", n, len);
        got = chat_base64_decode(text, len, back, sizeof back);
        CHECKF(got == (long)n && memcmp(back, in, n) == 0, "length %zu: decoded %ld", n, got);
    }
}

/* --- UTF-8 --- */

static void test_utf8_accepts_valid_sequences(void) {
    static const struct { const char *s; size_t n; } ok[] = {
        {"", 0}, {"hello, world", 12}, {"\0", 1}, {"\x7f", 1},
        {"\xc2\x80", 2}, {"\xc3\xa9", 2}, {"\xdf\xbf", 2},                     /* U+0080, é, U+07FF */
        {"\xe0\xa0\x80", 3}, {"\xe2\x82\xac", 3}, {"\xe5\x90\x8d", 3},         /* U+0800, €, 名 */
        {"\xed\x9f\xbf", 3}, {"\xee\x80\x80", 3}, {"\xef\xbf\xbd", 3},         /* U+D7FF, U+E000, U+FFFD */
        {"\xef\xbf\xbf", 3},                                                   /* U+FFFF */
        {"\xf0\x90\x80\x80", 4}, {"\xf0\x9f\xa6\x95", 4}, {"\xf3\xbf\xbf\xbf", 4}, /* U+10000, 🦕 */
        {"\xf4\x8f\xbf\xbf", 4},                                               /* U+10FFFF */
        {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\xa6\x95z", 11},
    };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECKF(chat_utf8_valid(ok[i].s, ok[i].n) == 1, "case %zu rejected", i);
        CHECKF(chat_utf8_feed(CHAT_UTF8_ACCEPT, (const unsigned char *)ok[i].s, ok[i].n) == CHAT_UTF8_ACCEPT,
               "case %zu: feed did not end in ACCEPT", i);
    }
}

/* An independent definition of "one valid UTF-8 character of exactly n bytes": decode by the
   bit pattern, then refuse overlongs, surrogates and code points above U+10FFFF. */
static int ub_utf8_ref_valid(const unsigned char *b, size_t n) {
    static const unsigned lead_mask[5] = {0, 0x80, 0xE0, 0xF0, 0xF8}, lead_bits[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    static const unsigned long min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned long cp;
    size_t i;
    if ((b[0] & lead_mask[n]) != lead_bits[n]) return 0;
    cp = b[0] & ~lead_mask[n] & 0xFF;
    for (i = 1; i < n; i++) {
        if ((b[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (b[i] & 0x3F);
    }
    return cp >= min_cp[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

/* A whole string by the reference: split into characters by their lead bytes. */
static int ub_utf8_ref_string(const unsigned char *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t len = b[i] < 0x80 ? 1 : (b[i] & 0xE0) == 0xC0 ? 2 : (b[i] & 0xF0) == 0xE0 ? 3
                     : (b[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || len > n - i || !ub_utf8_ref_valid(b + i, len)) return 0;
        i += len;
    }
    return 1;
}

/* Every 1- and 2-byte string, every 3-byte string that starts with E0..EF, and 4-byte strings
   over all first and second bytes with boundary values for the rest, against the reference. */
static void test_utf8_matches_reference_for_short_sequences(void) {
    static const unsigned char edge[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    unsigned char b[4];
    unsigned a, c, d, e;
    long mismatches = 0;
    for (a = 0; a < 256; a++) {
        b[0] = (unsigned char)a;
        if (chat_utf8_valid(b, 1) != ub_utf8_ref_string(b, 1) && mismatches++ < 5) CHECKF(0, "%02x", a);
        for (c = 0; c < 256; c++) {
            b[1] = (unsigned char)c;
            if (chat_utf8_valid(b, 2) != ub_utf8_ref_string(b, 2) && mismatches++ < 5) CHECKF(0, "%02x %02x", a, c);
            if (a >= 0xE0 && a <= 0xEF) /* the 3-byte leads over every pair of following bytes */
                for (d = 0; d < 256; d++) {
                    b[2] = (unsigned char)d;
                    if (chat_utf8_valid(b, 3) != ub_utf8_ref_string(b, 3) && mismatches++ < 5)
                        CHECKF(0, "%02x %02x %02x", a, c, d);
                }
            if (a >= 0xF0)
                for (d = 0; d < sizeof edge; d++)
                    for (e = 0; e < sizeof edge; e++) {
                        b[2] = edge[d], b[3] = edge[e];
                        if (chat_utf8_valid(b, 4) != ub_utf8_ref_string(b, 4) && mismatches++ < 5)
                            CHECKF(0, "%02x %02x %02x %02x", a, c, b[2], b[3]);
                    }
        }
    }
    CHECKF(mismatches == 0, "%ld sequences judged differently from the reference", mismatches);
    /* the reference itself: a few known answers */
    CHECK_INT(ub_utf8_ref_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4), 1);
    CHECK_INT(ub_utf8_ref_valid((const unsigned char *)"\xed\xa0\x80", 3), 0);
    CHECK_INT(ub_utf8_ref_valid((const unsigned char *)"\xe0\x9f\xbf", 3), 0);
    CHECK_INT(ub_utf8_ref_string((const unsigned char *)"a\xc3\xa9" "b", 4), 1);
    CHECK_INT(ub_utf8_ref_string((const unsigned char *)"\xc3", 1), 0);
}

/* Lead bytes that can never start a character: C0, C1, F5..FF, and every continuation byte. */
static void test_utf8_impossible_lead_bytes(void) {
    unsigned c;
    for (c = 0; c < 256; c++) {
        int impossible = c == 0xC0 || c == 0xC1 || c >= 0xF5 || (c >= 0x80 && c <= 0xBF);
        uint32_t st = chat_utf8_step(CHAT_UTF8_ACCEPT, c);
        CHECKF((st == CHAT_UTF8_REJECT) == impossible, "lead byte %02x: state %lu", c, (unsigned long)st);
    }
}

/* Each invalid input with the index of the byte at which it must be rejected. */
static const struct { const char *s; size_t n, at; } ub_utf8_bad[] = {
    {"\xc0\x80", 2, 0},         {"\xc1\xbf", 2, 0},          /* overlong 2-byte */
    {"\xe0\x80\x80", 3, 1},     {"\xe0\x9f\xbf", 3, 1},      /* overlong 3-byte */
    {"\xf0\x80\x80\x80", 4, 1}, {"\xf0\x8f\xbf\xbf", 4, 1},  /* overlong 4-byte */
    {"\xed\xa0\x80", 3, 1},     {"\xed\xbf\xbf", 3, 1},      /* surrogates D800, DFFF */
    {"\xf4\x90\x80\x80", 4, 1}, {"\xf4\xbf\xbf\xbf", 4, 1},  /* above U+10FFFF */
    {"\xf5\x80\x80\x80", 4, 0}, {"\xf7\xbf\xbf\xbf", 4, 0}, {"\xf8\x88\x80\x80\x80", 5, 0},
    {"\xfc\x84\x80\x80\x80\x80", 6, 0},
    {"\xfe", 1, 0},             {"\xff", 1, 0},              {"ab\xfe", 3, 2}, {"ab\xff" "cd", 5, 2},
    {"\x80", 1, 0},             {"\xbf", 1, 0},              {"a\x80", 2, 1}, /* stray continuation */
    {"\xc3\xa9\xa9", 3, 2},     {"\xe2\x82\xac\x80", 4, 3},                   /* one continuation too many */
    {"\xc3" "A", 2, 1},         {"\xe2\x82" "A", 3, 2},      {"\xf0\x9f\xa6" "A", 4, 3}, /* cut short */
    {"\xe2" "A\x82\xac", 4, 1}, {"\xc3\xc3\xa9", 3, 1},      {"\xf0\x9f\xa6\xf0", 4, 3},
    {"abcdefgh\xc0\x80", 10, 8}, {"abcdefghijklmnop\x80", 17, 16},
};

static void test_utf8_rejects_invalid_sequences(void) {
    size_t i;
    for (i = 0; i < sizeof ub_utf8_bad / sizeof ub_utf8_bad[0]; i++) {
        CHECKF(chat_utf8_valid(ub_utf8_bad[i].s, ub_utf8_bad[i].n) == 0, "case %zu accepted", i);
        CHECKF(chat_utf8_feed(CHAT_UTF8_ACCEPT, (const unsigned char *)ub_utf8_bad[i].s, ub_utf8_bad[i].n) ==
                   CHAT_UTF8_REJECT,
               "case %zu: feed did not return REJECT", i);
    }
}

/* Fed one byte at a time, the state flips to REJECT exactly at the first invalid byte and stays. */
static void test_utf8_reject_reported_at_the_invalid_byte(void) {
    size_t i, k;
    for (i = 0; i < sizeof ub_utf8_bad / sizeof ub_utf8_bad[0]; i++) {
        const unsigned char *s = (const unsigned char *)ub_utf8_bad[i].s;
        uint32_t st = CHAT_UTF8_ACCEPT;
        size_t at = (size_t)-1;
        for (k = 0; k < ub_utf8_bad[i].n; k++) {
            st = chat_utf8_feed(st, s + k, 1);
            if (st == CHAT_UTF8_REJECT && at == (size_t)-1) at = k;
            if (at != (size_t)-1) CHECKF(st == CHAT_UTF8_REJECT, "case %zu: left REJECT at byte %zu", i, k);
        }
        CHECKF(at == ub_utf8_bad[i].at, "case %zu: rejected at byte %zu, expected %zu", i, at, ub_utf8_bad[i].at);
        /* the same with chat_utf8_step */
        st = CHAT_UTF8_ACCEPT;
        for (k = 0; k < ub_utf8_bad[i].at; k++) {
            st = chat_utf8_step(st, s[k]);
            CHECKF(st != CHAT_UTF8_REJECT, "case %zu: step rejected early at %zu", i, k);
        }
        CHECKF(chat_utf8_step(st, s[k]) == CHAT_UTF8_REJECT, "case %zu: step accepted byte %zu", i, k);
    }
    CHECK_INT(chat_utf8_step(CHAT_UTF8_REJECT, 'a'), CHAT_UTF8_REJECT);
    CHECK_INT(chat_utf8_step(CHAT_UTF8_REJECT, 0x80), CHAT_UTF8_REJECT);
    CHECK_INT(chat_utf8_feed(CHAT_UTF8_REJECT, (const unsigned char *)"abcdefghijkl", 12), CHAT_UTF8_REJECT);
}

/* A sequence cut short at the end of the input is neither valid nor (yet) rejected. */
static void test_utf8_truncated_at_end_is_incomplete(void) {
    static const struct { const char *s; size_t n; } cut[] = {
        {"\xc3", 1}, {"\xe2", 1}, {"\xe2\x82", 2}, {"\xf0", 1}, {"\xf0\x9f", 2}, {"\xf0\x9f\xa6", 3},
        {"abc\xe5\x90", 5}, {"\xf4\x8f\xbf", 3}, {"\xed\x9f", 2}, {"abcdefgh\xc3", 9},
    };
    size_t i;
    for (i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        uint32_t st = chat_utf8_feed(CHAT_UTF8_ACCEPT, (const unsigned char *)cut[i].s, cut[i].n);
        CHECKF(st != CHAT_UTF8_ACCEPT && st != CHAT_UTF8_REJECT, "case %zu: state %lu", i, (unsigned long)st);
        CHECKF(chat_utf8_valid(cut[i].s, cut[i].n) == 0, "case %zu accepted", i);
    }
}

/* A valid string split at every byte position: never REJECT, ACCEPT exactly at character
   boundaries, ACCEPT at the end. */
static void test_utf8_incremental_split_at_every_position(void) {
    static const char s[] = "h\xc3\xa9llo \xe2\x82\xac\xf0\x9d\x84\x9e \xe5\x90\x8d\xe5\xad\x97 \xf0\x9f\xa6\x95"
                            "\xef\xbf\xbf\xf4\x8f\xbf\xbf\xc2\x80!";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = sizeof s - 1, k;
    uint32_t st = CHAT_UTF8_ACCEPT;
    for (k = 0; k <= n; k++) {
        uint32_t a = chat_utf8_feed(CHAT_UTF8_ACCEPT, p, k);
        int boundary = k == n || (p[k] & 0xC0) != 0x80;
        CHECKF(a != CHAT_UTF8_REJECT, "prefix of %zu bytes rejected", k);
        CHECKF((a == CHAT_UTF8_ACCEPT) == boundary, "prefix of %zu bytes: state %lu", k, (unsigned long)a);
        CHECKF(chat_utf8_feed(a, p + k, n - k) == CHAT_UTF8_ACCEPT, "split at %zu: not ACCEPT at the end", k);
    }
    for (k = 0; k < n; k++) { /* one byte at a time */
        st = chat_utf8_feed(st, p + k, 1);
        CHECKF(st != CHAT_UTF8_REJECT, "byte %zu rejected", k);
    }
    CHECK_INT(st, CHAT_UTF8_ACCEPT);
}

/* The 8-bytes-at-a-time ASCII path, at every alignment and length, with a non-ASCII byte
   (valid or not) placed at every position of the run. */
static void test_utf8_ascii_fast_path_every_alignment(void) {
    unsigned char buf[96];
    size_t align, len, pos;
    for (align = 0; align < 8; align++) {
        for (len = 0; len <= 40; len++) {
            unsigned char *p = buf + align;
            memset(buf, 'a', sizeof buf);
            CHECKF(chat_utf8_valid(p, len) == 1, "align %zu len %zu: ASCII rejected", align, len);
            for (pos = 0; pos < len; pos++) {
                memset(buf, 'a', sizeof buf);
                p[pos] = 0x80;
                CHECKF(chat_utf8_feed(CHAT_UTF8_ACCEPT, p, len) == CHAT_UTF8_REJECT,
                       "align %zu len %zu: stray 0x80 at %zu missed", align, len, pos);
                p[pos] = 0xC3;
                CHECKF(chat_utf8_valid(p, len) == 0, "align %zu len %zu: C3 'a' at %zu accepted", align, len, pos);
                if (pos + 1 < len) {
                    p[pos + 1] = 0xA9;
                    CHECKF(chat_utf8_valid(p, len) == 1, "align %zu len %zu: é at %zu rejected", align, len, pos);
                }
            }
        }
    }
    /* In the middle of a character the ASCII path must not be taken. */
    memset(buf, 'a', sizeof buf);
    CHECK_INT(chat_utf8_feed(chat_utf8_step(CHAT_UTF8_ACCEPT, 0xC3), buf, 32), CHAT_UTF8_REJECT);
    buf[0] = 0xA9;
    CHECK_INT(chat_utf8_feed(chat_utf8_step(CHAT_UTF8_ACCEPT, 0xC3), buf, 32), CHAT_UTF8_ACCEPT);
}

/* --- chat_buf --- */

static void test_buf_append_grows_and_keeps_content(void) {
    chat_buf b;
    unsigned char expect[5000];
    size_t i, total = 0;
    memset(&b, 0, sizeof b);
    for (i = 0; i < sizeof expect; i++) expect[i] = (unsigned char)(i * 7 + (i >> 8));
    for (i = 1; total + i <= sizeof expect; i++) { /* pieces of growing size: 1, 2, 3, ... */
        CHECK_INT(chat_buf_append(&b, expect + total, i), CHAT_OK);
        total += i;
        CHECK_INT(b.len, total);
        CHECK(b.cap >= b.len);
    }
    CHECK_MEM(b.data, b.len, expect, total);
    CHECK_INT(chat_buf_append(&b, NULL, 0), CHAT_OK); /* empty append is fine */
    CHECK_INT(b.len, total);
    chat_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);
}

static void test_buf_reserve_keeps_content_and_len(void) {
    chat_buf b;
    memset(&b, 0, sizeof b);
    CHECK_INT(chat_buf_reserve(&b, 0), CHAT_OK);
    CHECK_INT(chat_buf_append(&b, "hello", 5), CHAT_OK);
    CHECK_INT(chat_buf_reserve(&b, 100000), CHAT_OK);
    CHECK(b.cap >= 100005);
    CHECK_INT(b.len, 5);
    CHECK_MEM(b.data, b.len, "hello", 5);
    CHECK_INT(chat_buf_append(&b, " world", 6), CHAT_OK);
    CHECK_MEM(b.data, b.len, "hello world", 11);
    /* a reservation that cannot be represented fails cleanly and changes nothing */
    CHECK_INT(chat_buf_reserve(&b, (size_t)-1), CHAT_ENOMEM);
    CHECK_INT(chat_buf_reserve(&b, (size_t)-1 - 10), CHAT_ENOMEM);
    CHECK_MEM(b.data, b.len, "hello world", 11);
    chat_buf_free(&b);
}

static void unit_bytes_tests(void) {
    RUN(test_sha1_rfc3174_vectors);
    RUN(test_sha1_empty_string);
    RUN(test_sha1_every_length_0_to_130);
    RUN(test_sha1_padding_edges_with_high_bytes);
    RUN(test_base64_encode_rfc4648_vectors);
    RUN(test_base64_decode_rfc4648_vectors);
    RUN(test_base64_decode_rejects_wrong_length);
    RUN(test_base64_decode_rejects_bad_characters);
    RUN(test_base64_decode_rejects_padding_in_the_middle);
    RUN(test_base64_decode_rejects_noncanonical_trailing_bits);
    RUN(test_base64_decode_respects_capacity);
    RUN(test_base64_16_byte_key_round_trips);
    RUN(test_base64_round_trips_all_byte_values);
    RUN(test_utf8_accepts_valid_sequences);
    RUN(test_utf8_matches_reference_for_short_sequences);
    RUN(test_utf8_impossible_lead_bytes);
    RUN(test_utf8_rejects_invalid_sequences);
    RUN(test_utf8_reject_reported_at_the_invalid_byte);
    RUN(test_utf8_truncated_at_end_is_incomplete);
    RUN(test_utf8_incremental_split_at_every_position);
    RUN(test_utf8_ascii_fast_path_every_alignment);
    RUN(test_buf_append_grows_and_keeps_content);
    RUN(test_buf_reserve_keeps_content_and_len);
}
