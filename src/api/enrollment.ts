/** What an authenticator app needs to enrol a TOTP secret: the URI and its QR code. */
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { otpauthUri } from "../knock/totp.ts";

/** Issuer shown in authenticator apps. */
export const TOTP_ISSUER = "Knockgate";

/** A secret to enrol, with its `otpauth://` URI and that URI as an SVG QR code. */
export interface Enrollment {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

/** The enrolment data of `secret` for user `account`. */
export async function enrollment(account: string, secret: string): Promise<Enrollment> {
  const uri = otpauthUri({ issuer: TOTP_ISSUER, account, secret });
  const qrSvg = await QRCode.toString(uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
  return { secret, otpauthUri: uri, qrSvg };
}
