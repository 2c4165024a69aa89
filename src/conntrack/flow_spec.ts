/**
 * `FlowSpec`: the two tuples of a flow about to be created, filled by name.
 * The datapath keeps one and refills it for every new flow, so creating a
 * flow allocates nothing.
 *
 * NAT as netfilter expresses it: the reply tuple is what answers look like.
 * Without NAT it is the inverted original; a DNAT flow's reply comes from the
 * private host, a SNAT flow's reply goes to the translated source.
 */

/** The tuples of a new flow. Addresses are unsigned 32-bit numbers; ICMP echo: identifier as both ports. */
export class FlowSpec {
  /** IP protocol number. */
  proto = 0;
  /** Original tuple: the packet that opens the flow. */
  origSrc = 0;
  origSrcPort = 0;
  origDst = 0;
  origDstPort = 0;
  /** Reply tuple: the packets that answer it. */
  replySrc = 0;
  replySrcPort = 0;
  replyDst = 0;
  replyDstPort = 0;
  /**
   * The datapath's flags (`FLAG_*`), the rule id and a TCP loose pickup of
   * the new flow: written with its tuples, before it is published, so a
   * Worker that finds the flow at once also finds its translation.
   */
  flags = 0;
  ruleId = -1;
  pickUp = false;

  /** Sets the original tuple and, until told otherwise, its inverse as the reply (no NAT); clears the flags, rule and pickup. */
  original(proto: number, src: number, srcPort: number, dst: number, dstPort: number): this {
    this.proto = proto;
    this.flags = 0;
    this.ruleId = -1;
    this.pickUp = false;
    this.origSrc = this.replyDst = src;
    this.origSrcPort = this.replyDstPort = srcPort;
    this.origDst = this.replySrc = dst;
    this.origDstPort = this.replySrcPort = dstPort;
    return this;
  }

  /** Sets the reply tuple. */
  reply(src: number, srcPort: number, dst: number, dstPort: number): this {
    this.replySrc = src;
    this.replySrcPort = srcPort;
    this.replyDst = dst;
    this.replyDstPort = dstPort;
    return this;
  }
}
