/*
 * Unit tests for core/bounce: the class names, the reply normaliser, the
 * built-in rules (conf/bounce-classes.yaml) against a table of real
 * replies as receivers send them, operator rules checked before the
 * built-in ones, and rules-file errors reported as file:line.
 *
 * The replies are copied from the providers' published references and
 * from bounces as they appear in the wild; each group names its source:
 *   [G]  Google, "Gmail SMTP errors and codes" (support.google.com/a/answer/3726730)
 *        and Gmail bounces quoted in public logs (pastebin.com/6G7q8H39, /UaXB41uS)
 *   [Y]  Yahoo, "Postmaster error codes" (postmaster.yahooinc.com/error-codes)
 *        and Yahoo bounces quoted by operators (secuserve.zammad.com/help 397)
 *   [M]  Microsoft, "Email non-delivery reports and SMTP errors in Exchange
 *        Online" (learn.microsoft.com), "Fix NDR error 550 5.7.515"
 *        (support.microsoft.com), postmaster.live.com S3150/S775 texts
 *   [P]  Postfix smtpd's reply texts (src/smtpd/smtpd_check.c), Postfix
 *        smtp client reasons; [E] Exim's; [S] Sendmail's; [X] Exchange on-premises
 *   [O]  other providers: Apple iCloud, Yandex, Mail.ru, GMX/WEB.DE, Orange,
 *        Comcast (their postmaster pages)
 *   [R]  ringmta's own reasons (core/delivery, core/outbound, core/dns)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bounce/bclass.h"
#include "core/bounce/bclass_rules.h"
#include "tests/unit/tap.h"

struct bcase {
	const char *reply;	/* as sent (lines with CRLF), or ringmta's reason */
	const char *ecode;	/* ringmta's status for a reason; NULL: from the reply */
	int failed;		/* 1 failed, 0 deferred */
	enum bclass want;
};

#define F 1
#define D 0

static const struct bcase cases[] = {
	/* [G] Gmail */
	{ "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
	  "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
	  "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
	  "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp",
	  NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 5.2.1 The email account that you tried to reach is disabled. a1si1 - gsmtp",
	  NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550-5.2.1 The email account that you tried to reach is inactive and can't receive\r\n"
	  "550 5.2.1 messages. a1si1 - gsmtp", NULL, F, BCLASS_INVALID_RECIPIENT },
	/* [G] the permanent form of the receiving-rate limit (a Gmail bounce
	 * quoted at pastebin.com/SpZumxtS): the address is good, it must
	 * not be suppressed as invalid. */
	{ "550-5.2.1 The user you are trying to contact is receiving mail at a rate that\r\n"
	  "550-5.2.1 prevents additional messages from being delivered. For more\r\n"
	  "550-5.2.1 information, please visit\r\n"
	  "550 5.2.1 https://support.google.com/mail/?p=ReceivingRatePerm p41si4843565qte.548 - gsmtp",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "452-4.2.2 The recipient's inbox is out of storage space. Please direct the\r\n"
	  "452-4.2.2 recipient to\r\n"
	  "452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp a1si1 - gsmtp",
	  NULL, D, BCLASS_MAILBOX_FULL },
	{ "552-5.2.2 The recipient's inbox is out of storage space and inactive. Please direct\r\n"
	  "552 5.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaPerm a1 - gsmtp",
	  NULL, F, BCLASS_MAILBOX_FULL },
	{ "552-5.2.3 Your message exceeded Google's message size limits. For more information,\r\n"
	  "552 5.2.3 go to https://support.google.com/mail/?p=MaxSizeError a1si1 - gsmtp",
	  NULL, F, BCLASS_MESSAGE_TOO_LARGE },
	{ "552 5.3.4 Your message exceeded Google's message size limits. a1si1 - gsmtp",
	  NULL, F, BCLASS_MESSAGE_TOO_LARGE },
	{ "450-4.2.1 The user you are trying to contact is receiving mail too quickly. Please\r\n"
	  "450-4.2.1 resend your message at a later time. If the user is able to receive\r\n"
	  "450 4.2.1 mail at that time, your message will be delivered. a1si1 - gsmtp",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "450 4.2.1 The user you are trying to contact is receiving mail at a rate that"
	  " prevents additional messages from being delivered. a1 - gsmtp",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating\r\n"
	  "421-4.7.28 from your DKIM domain [example.com      12]. To protect our users\r\n"
	  "421-4.7.28 from spam, mail sent from your domain has been temporarily rate\r\n"
	  "421 4.7.28 limited. a1si1 - gsmtp", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "550-5.7.28 There's an unusual rate of unsolicited mail from your IP netblock. To\r\n"
	  "550 5.7.28 protect our users from spam, mail has been blocked. a1 - gsmtp",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "421-4.7.0 [216.194.173.80 15] Our system has detected an unusual rate of\r\n"
	  "421-4.7.0 unsolicited mail originating from your IP address. To protect our\r\n"
	  "421-4.7.0 users from spam, mail sent from your IP address has been temporarily\r\n"
	  "421-4.7.0 rate limited. Please visit\r\n"
	  "421-4.7.0 https://support.google.com/mail/?p=UnsolicitedRateLimitError to\r\n"
	  "421 4.7.0 review our Bulk Email Senders Guidelines. p4si3522070uam.9 - gsmtp",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "550-5.7.1 [195.64.158.216 12] Our system has detected that this message is\r\n"
	  "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n"
	  "550-5.7.1 this message has been blocked. Please visit\r\n"
	  "550 5.7.1 https://support.google.com/mail/answer/188131 for more information."
	  " dh9si2656259wib.8 - gsmtp", NULL, F, BCLASS_SPAM_OR_CONTENT },
	{ "552-5.7.0 This message was blocked because its content presents a potential\r\n"
	  "552-5.7.0 security issue. Please visit\r\n"
	  "552 5.7.0 https://support.google.com/mail/?p=BlockedMessage a1 - gsmtp",
	  NULL, F, BCLASS_SPAM_OR_CONTENT },
	{ "550-5.7.1 The IP you're using to send mail is not authorized to send email\r\n"
	  "550-5.7.1 directly to our servers. Please use the SMTP relay at your service\r\n"
	  "550 5.7.1 provider instead. a1si1 - gsmtp", NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n"
	  "550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.\r\n"
	  "550 5.7.26 a1si1 - gsmtp", NULL, F, BCLASS_AUTHENTICATION },
	{ "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's\r\n"
	  "550 5.7.26 DMARC policy. a1si1 - gsmtp", NULL, F, BCLASS_AUTHENTICATION },
	{ "421-4.7.26 This mail has been rate limited because it is unauthenticated. Gmail\r\n"
	  "421 4.7.26 requires all senders to authenticate with either SPF or DKIM. a1 - gsmtp",
	  NULL, D, BCLASS_AUTHENTICATION },
	{ "550-5.7.27 The sender does not meet basic SPF requirements. a1si1 - gsmtp",
	  NULL, F, BCLASS_AUTHENTICATION },
	{ "421-4.7.27 Your email has been rate limited because SPF authentication didn't\r\n"
	  "421 4.7.27 pass for this message. a1si1 - gsmtp", NULL, D, BCLASS_AUTHENTICATION },
	{ "550-5.7.30 Your email has been blocked because DKIM authentication didn't pass\r\n"
	  "550 5.7.30 for this message. a1si1 - gsmtp", NULL, F, BCLASS_AUTHENTICATION },
	{ "421-4.7.30 Your email has been rate limited because DKIM authentication didn't\r\n"
	  "421 4.7.30 pass for this message. a1si1 - gsmtp", NULL, D, BCLASS_AUTHENTICATION },
	{ "550-5.7.32 Your email has been blocked because the sender is not aligned with\r\n"
	  "550 5.7.32 the From: header domain (DMARC). a1si1 - gsmtp",
	  NULL, F, BCLASS_AUTHENTICATION },
	{ "421-4.7.32 Your email has been rate limited because the From: header (RFC5322)\r\n"
	  "421 4.7.32 in this message isn't aligned with either the authenticated SPF or"
	  " DKIM organizational domain. a1 - gsmtp", NULL, D, BCLASS_AUTHENTICATION },
	{ "550-5.7.40 Your email has been blocked because DMARC policy is missing for your\r\n"
	  "550 5.7.40 sender domain. a1si1 - gsmtp", NULL, F, BCLASS_AUTHENTICATION },
	{ "421-4.7.40 Your email has been rate limited because DMARC policy is missing for\r\n"
	  "421 4.7.40 your sender domain. a1si1 - gsmtp", NULL, D, BCLASS_AUTHENTICATION },
	{ "550-5.7.25 The IP address sending this message does not have a PTR record setup,\r\n"
	  "550 5.7.25 or the corresponding forward DNS entry does not match. a1 - gsmtp",
	  NULL, F, BCLASS_AUTHENTICATION },
	{ "421-4.7.0 This message does not have authentication information or fails to\r\n"
	  "421-4.7.0 pass authentication checks. To best protect our users from spam, the\r\n"
	  "421 4.7.0 message has been blocked. a1si1 - gsmtp", NULL, D, BCLASS_AUTHENTICATION },
	{ "421-4.7.0 TLS required for RCPT domain, closing connection. a1si1 - gsmtp",
	  NULL, D, BCLASS_TLS },
	{ "530 5.7.0 Must issue a STARTTLS command first. a1si1 - gsmtp", NULL, F, BCLASS_TLS },
	{ "550 5.7.1 The user or domain that you are sending to (or from) has a policy that"
	  " prohibited the mail that you sent. a1si1 - gsmtp", NULL, F, BCLASS_POLICY },
	{ "550-5.4.5 Daily user sending limit exceeded. For more information on Gmail\r\n"
	  "550 5.4.5 sending limits go to https://support.google.com/a/answer/166852 - gsmtp",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "451 4.3.0 Mail server temporarily rejected message. a1si1 - gsmtp",
	  NULL, D, BCLASS_OTHER },
	{ "452 4.5.3 Domain policy size per transaction exceeded, please try this recipient"
	  " in a separate transaction. a1 - gsmtp", NULL, D, BCLASS_POLICY },
	{ "421 4.4.5 Server busy, try again later. a1si1 - gsmtp",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.1 Messages missing a valid address in From: header, or having no From:"
	  " header, are not accepted. a1si1 - gsmtp", NULL, F, BCLASS_POLICY },

	/* [Y] Yahoo / AOL */
	{ "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected"
	  " volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "421 4.7.0 [TS03] All messages from 192.0.2.1 will be permanently deferred; Retrying"
	  " will NOT succeed. See https://postmaster.yahooinc.com/error-codes",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to user complaints"
	  " - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
	  NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "421 4.7.0 [TS02] Messages from 192.0.2.1 temporarily deferred due to user complaints"
	  " - 4.16.56.1", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying"
	  " will NOT succeed. See https://postmaster.yahooinc.com/error-codes",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is"
	  " in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "553 5.7.1 [BL23] Connections not accepted from IP addresses on Spamhaus XBL; see"
	  " https://postmaster.yahooinc.com/error-codes", NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "554 5.7.9 Message not accepted for policy reasons.  See"
	  " https://postmaster.yahooinc.com/error-codes", NULL, F, BCLASS_POLICY },
	{ "550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo"
	  " requires all senders to authenticate with either SPF or DKIM.",
	  NULL, F, BCLASS_AUTHENTICATION },
	{ "550 5.7.9 Message not accepted due to domain's DMARC policy. Please see"
	  " https://postmaster.yahooinc.com/error-codes", NULL, F, BCLASS_AUTHENTICATION },
	{ "554 delivery error: dd This user doesn't have a yahoo.com account"
	  " (nobody@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com", NULL, F,
	  BCLASS_INVALID_RECIPIENT },
	{ "552 1 Requested mail action aborted, mailbox not found", NULL, F,
	  BCLASS_INVALID_RECIPIENT },
	{ "451 Message temporarily deferred - [160]", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "421 Message from (192.0.2.1) temporarily deferred - 4.16.50. Please refer to"
	  " https://postmaster.yahooinc.com/error-codes", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "554 5.7.9 Message not accepted for policy reasons. See"
	  " https://help.aol.com/articles/mail-policy", NULL, F, BCLASS_POLICY },
	/* AOL's blocks under 5.2.1, which is no statement about the mailbox:
	 * after DATA, on content (wordtothewise.com/2015/11/when-did-the-
	 * reject-happen), and CON:B1, "topped our thresholds, back off"
	 * (wordtothewise.com/2012/08/aol-bounces-and-false-positives,
	 * knownhost.com/kb/smtp-error-521). Hard here, they suppressed good
	 * AOL addresses. */
	{ "521 5.2.1 : AOL will not accept delivery of this message.", NULL, F,
	  BCLASS_SPAM_OR_CONTENT },
	{ "521 5.2.1 : (CON:B1) http://postmaster.info.aol.com/errors/554conb1.html", NULL, F,
	  BCLASS_REPUTATION_OR_RATE },

	/* [M] Microsoft: Outlook.com and Exchange Online */
	{ "550 5.7.515 Access denied, sending domain example.com does not meet the required"
	  " authentication level.", NULL, F, BCLASS_AUTHENTICATION },
	{ "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP"
	  " reputation. For e-mail delivery information, see https://postmaster.live.com (S775)"
	  " [Name=Protocol Filter Agent][AGT=PFA][MxId=11B6E3]", NULL, D,
	  BCLASS_REPUTATION_OR_RATE },
	{ "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)"
	  " [Hostname=BY2PR01MB123.prod.exchangelabs.com]", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your"
	  " Internet service provider since part of their network is on our block list (S3150)."
	  " You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus. To"
	  " request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.1"
	  " (AS3130)", NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.606 Access denied, banned sending IP [192.0.2.1]. To request removal from"
	  " this list please visit https://sender.office.com/ and follow the directions.",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.511 Access denied, banned sender[192.0.2.1]. To request removal from this"
	  " list please forward this message to delist@microsoft.com.", NULL, F,
	  BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)"
	  " [AM4PEPF00025F98.EURPRD83.prod.outlook.com]", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by"
	  " SMTP address lookup", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"
	  " [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com]", NULL, F,
	  BCLASS_INVALID_RECIPIENT },
	{ "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded;"
	  " Failed to process message due to a permanent exception", NULL, F, BCLASS_MAILBOX_FULL },
	{ "550 5.7.509 Access denied, sending domain example.com does not pass DMARC"
	  " verification and has a DMARC policy of reject.", NULL, F, BCLASS_AUTHENTICATION },
	{ "550 5.7.23 The message was rejected because of Sender Policy Framework violation",
	  NULL, F, BCLASS_AUTHENTICATION },
	{ "550 5.7.64 TenantAttribution; Relay Access Denied", NULL, F, BCLASS_RELAYING },
	{ "530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication"
	  " unsuccessful", NULL, F, BCLASS_RELAYING },
	{ "550 5.7.520 Access denied, Your organization does not allow external forwarding."
	  " Please contact your administrator for further assistance. AS(7555)", NULL, F,
	  BCLASS_POLICY },
	{ "550 5.7.512 Access denied, message must be RFC 5322 section 3.6.2 compliant and"
	  " include a valid From address", NULL, F, BCLASS_PROTOCOL },
	{ "550 5.4.310 DNS domain example.invalid does not exist [Message=InfoDomainNonexistent]",
	  NULL, F, BCLASS_BAD_DOMAIN },
	{ "550 5.7.750 Service unavailable. Client blocked from sending from unregistered"
	  " domains.", NULL, F, BCLASS_POLICY },
	{ "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit,"
	  " closing transmission channel", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized", NULL, F, BCLASS_POLICY },
	{ "552 5.3.4 Message size exceeds fixed maximum message size", NULL, F,
	  BCLASS_MESSAGE_TOO_LARGE },

	/* [P] Postfix smtpd */
	{ "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local"
	  " recipient table", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual"
	  " mailbox table", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "554 5.7.1 <someone@example.net>: Relay access denied", NULL, F, BCLASS_RELAYING },
	{ "450 4.1.2 <a@nonexistent.example>: Recipient address rejected: Domain not found",
	  NULL, D, BCLASS_BAD_DOMAIN },
	{ "450 4.1.8 <s@nodomain.example>: Sender address rejected: Domain not found",
	  NULL, D, BCLASS_POLICY },
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using"
	  " zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1", NULL, F,
	  BCLASS_REPUTATION_OR_RATE },
	{ "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]", NULL, D,
	  BCLASS_AUTHENTICATION },
	{ "550 5.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]",
	  NULL, F, BCLASS_AUTHENTICATION },
	{ "552 5.3.4 Message size exceeds fixed limit", NULL, F, BCLASS_MESSAGE_TOO_LARGE },
	{ "452 4.3.1 Insufficient system storage", NULL, D, BCLASS_OTHER },
	{ "450 4.2.0 <a@example.org>: Recipient address rejected: Greylisted, see"
	  " http://postgrey.schweikert.ch/help/example.org.html", NULL, D, BCLASS_POLICY },
	{ "451 4.7.1 <a@example.org>: Recipient address rejected: Please try again later"
	  " (greylisting)", NULL, D, BCLASS_POLICY },
	{ "452 4.2.2 <a@example.org>: Recipient address rejected: Mailbox full", NULL, D,
	  BCLASS_MAILBOX_FULL },
	{ "552 5.2.2 <a@example.org>: Recipient address rejected: Quota exceeded (mailbox for"
	  " user is full)", NULL, F, BCLASS_MAILBOX_FULL },
	{ "503 5.5.1 Error: need RCPT command", NULL, F, BCLASS_PROTOCOL },
	{ "501 5.5.4 Syntax: RCPT TO:<address>", NULL, F, BCLASS_PROTOCOL },
	{ "452 4.5.3 Error: too many recipients", NULL, D, BCLASS_PROTOCOL },
	{ "421 4.3.2 Service shutting down", NULL, D, BCLASS_CONNECTION },
	{ "554 5.7.1 <a@example.org>: Recipient address rejected: Access denied", NULL, F,
	  BCLASS_INVALID_RECIPIENT },
	{ "550 5.7.1 Message rejected as spam by Content Filtering.", NULL, F,
	  BCLASS_SPAM_OR_CONTENT },
	{ "554 5.7.0 Reject, id=12345-01 - spam", NULL, F, BCLASS_SPAM_OR_CONTENT },
	{ "554 5.7.0 Reject, id=12345-01 - VIRUS: Eicar-Test-Signature", NULL, F,
	  BCLASS_SPAM_OR_CONTENT },

	/* [E] Exim */
	{ "550 Unrouteable address", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 No Such User Here", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 relay not permitted", NULL, F, BCLASS_RELAYING },
	{ "550 Administrative prohibition", NULL, F, BCLASS_POLICY },
	{ "550-Verification failed for <s@example.com>\r\n"
	  "550-Unrouteable address\r\n550 Sender verify failed", NULL, F, BCLASS_POLICY },
	{ "550 rejected because 192.0.2.1 is in a black list at zen.spamhaus.org", NULL, F,
	  BCLASS_REPUTATION_OR_RATE },
	{ "552 Message size exceeds maximum permitted", NULL, F, BCLASS_MESSAGE_TOO_LARGE },
	{ "550-Mailbox quota exceeded", NULL, F, BCLASS_MAILBOX_FULL },
	{ "451-The server has reached its limit for processing requests from your host.\r\n"
	  "451 Please try again later.", NULL, D, BCLASS_REPUTATION_OR_RATE },
	{ "421 Too many concurrent SMTP connections; please try again later.", NULL, D,
	  BCLASS_REPUTATION_OR_RATE },
	{ "550 SPF check failed", NULL, F, BCLASS_AUTHENTICATION },
	{ "451 Temporary local problem - please try later", NULL, D, BCLASS_OTHER },
	{ "550 5.7.1 Blocked by SpamAssassin", NULL, F, BCLASS_SPAM_OR_CONTENT },

	/* [S] Sendmail */
	{ "550 5.1.1 <nobody@example.com>... User unknown", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 5.7.1 <someone@example.net>... Relaying denied. Proper authentication required.",
	  NULL, F, BCLASS_RELAYING },
	{ "553 5.1.2 <a@nohost.example>... Host unknown (Name server: nohost.example.: host"
	  " not found)", NULL, F, BCLASS_BAD_DOMAIN },
	{ "552 5.2.2 <a@example.com>... Mailbox full", NULL, F, BCLASS_MAILBOX_FULL },
	{ "452 4.4.5 Insufficient disk space; try again later", NULL, D,
	  BCLASS_REPUTATION_OR_RATE },
	{ "550 5.7.1 <a@example.com>... Access denied", NULL, F, BCLASS_POLICY },
	{ "553 5.3.0 <a@example.com>... No such user", NULL, F, BCLASS_INVALID_RECIPIENT },

	/* [O] other providers */
	{ "550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.1",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },
	{ "554 5.7.1 [CS01] Message rejected due to local policy. Please visit"
	  " https://support.apple.com/en-us/HT204137", NULL, F, BCLASS_SPAM_OR_CONTENT },
	{ "550 5.1.1 unknown or illegal alias: nobody@icloud.com", NULL, F,
	  BCLASS_INVALID_RECIPIENT },
	{ "554 5.7.1 [2] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc", NULL,
	  F, BCLASS_SPAM_OR_CONTENT },
	{ "550 5.7.1 No such user!", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 Message was not accepted -- invalid mailbox.  Local mailbox nobody@mail.ru is"
	  " unavailable: user not found", NULL, F, BCLASS_INVALID_RECIPIENT },
	{ "550 Requested action not taken: mailbox unavailable", NULL, F,
	  BCLASS_INVALID_RECIPIENT },
	{ "554-gmx.net (mxgmx017) Nemesis ESMTP Service not available\r\n"
	  "554-No SMTP service\r\n554 Reject due to policy restrictions.", NULL, F,
	  BCLASS_POLICY },
	{ "554 5.7.1 Service refuse. Veuillez essayer plus tard. Service refused, please try"
	  " later. OFR_999 [999]", NULL, F, BCLASS_POLICY },
	{ "554 resimta-h1p-028482.sys.comcast.net resimta-h1p-028482.sys.comcast.net 192.0.2.1"
	  " found on one or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000010",
	  NULL, F, BCLASS_REPUTATION_OR_RATE },

	/* [R] ringmta's own reasons */
	{ "domain does not accept mail (null MX, RFC 7505)", "5.1.10", F, BCLASS_BAD_DOMAIN },
	{ "domain nonexistent.example does not exist (NXDOMAIN)", "5.1.2", F, BCLASS_BAD_DOMAIN },
	{ "MX lookup for example.org: Timeout while contacting DNS servers", "4.4.3", D,
	  BCLASS_DNS },
	{ "example.org has no MX and no address records", "4.4.3", D, BCLASS_BAD_DOMAIN },
	{ "connect to mx.example.org[192.0.2.1]:25: Connection refused", "4.4.1", D,
	  BCLASS_CONNECTION },
	{ "lost connection with mx.example.org[192.0.2.1]:25 while receiving the initial"
	  " greeting", "4.4.2", D, BCLASS_CONNECTION },
	{ "conversation with mx.example.org[192.0.2.1]:25 timed out while sending RCPT",
	  "4.4.2", D, BCLASS_CONNECTION },
	{ "TLS is required, but was not offered by host mx.example.org[192.0.2.1]:25", "4.4.2",
	  D, BCLASS_TLS },
	{ "TLS handshake with mx.example.org[192.0.2.1]:25 failed: certificate verify failed",
	  "4.4.2", D, BCLASS_TLS },
	{ "SMTP AUTH with smtp.example.com[192.0.2.1]:587 failed: 535 5.7.8 Error:"
	  " authentication failed: authentication failure", "4.7.8", D, BCLASS_AUTHENTICATION },
	{ "SMTP AUTH with [192.0.2.1]:25 not attempted: the session is not encrypted", "4.7.0",
	  D, BCLASS_AUTHENTICATION },
	{ "host mx.example.org[192.0.2.1]:25 said: 421 4.7.0 [TSS04] Messages from 192.0.2.1"
	  " temporarily deferred due to unexpected volume or user complaints", "4.4.2", D,
	  BCLASS_REPUTATION_OR_RATE },
	{ "host mx.example.org[192.0.2.1]:25 refused to talk to me: 554 5.7.1 Service"
	  " unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "4.4.2", D,
	  BCLASS_REPUTATION_OR_RATE },
	{ "host mx.example.org[192.0.2.1]:25 answered DATA with 250 ok", "4.5.0", D,
	  BCLASS_PROTOCOL },
	{ "mail for example.org loops back to myself", "5.4.6", F, BCLASS_POLICY },
	{ "451 4.3.0 try later (gave up: message expired after 432000s in the queue)", "4.3.0",
	  F, BCLASS_EXPIRED },
	{ " (gave up: message expired after 60s in the queue)", "4.4.7", F, BCLASS_EXPIRED },
};

/* The reply as ringmta stores it: "ddd " and the lines without their
 * codes, joined with spaces (smtp_client.c, delivery_worker.c). */
static void stored_form(const char *raw, char *out, size_t len, char ecode[16])
{
	size_t n = 0;
	const char *p = raw;
	bool first = true;

	ecode[0] = '\0';
	while (*p != '\0' && n + 1 < len) {
		const char *eol = strstr(p, "\r\n");
		size_t l = eol ? (size_t)(eol - p) : strlen(p);

		if (l >= 4 && p[0] >= '2' && p[0] <= '5' && (p[3] == ' ' || p[3] == '-')) {
			if (first)
				n += (size_t)snprintf(out + n, len - n, "%.3s ", p);
			else if (n + 1 < len)
				out[n++] = ' ';
			n += (size_t)snprintf(out + n, len - n, "%.*s", (int)(l - 4), p + 4);
			if (!eol && p[4] >= '2' && p[4] <= '5' && p[5] == '.')
				sscanf(p + 4, "%15[0-9.]", ecode);
		} else {
			n += (size_t)snprintf(out + n, len - n, "%.*s", (int)l, p);
		}
		first = false;
		p += l + (eol ? 2 : 0);
	}
	if (n >= len)
		n = len - 1;
	out[n] = '\0';
	if (ecode[0] == '\0' && out[0] >= '2' && out[0] <= '5' && out[3] == ' ')
		snprintf(ecode, 16, "%c.0.0", out[0]);
}

static void test_names(void)
{
	int ok = 1;

	for (unsigned c = 1; c < BCLASS_COUNT; c++)
		ok = ok && bclass_parse(bclass_name(c), strlen(bclass_name(c))) == (int)c;
	tap_ok(ok, "every class name parses back to its class");
	tap_ok(bclass_parse("none", 4) == -1 && bclass_parse("invalid", 7) == -1 &&
	       bclass_name(BCLASS_COUNT) == NULL && strcmp(bclass_name(0), "none") == 0,
	       "'none' and unknown names are not classes");
	tap_ok(bclass_is_hard(BCLASS_INVALID_RECIPIENT) && bclass_is_hard(BCLASS_BAD_DOMAIN) &&
	       !bclass_is_hard(BCLASS_MAILBOX_FULL) && !bclass_is_hard(BCLASS_POLICY),
	       "hard classes: invalid-recipient and bad-domain only");
	tap_ok(BCLASS_INVALID_RECIPIENT == 1 && BCLASS_OTHER == 15,
	       "class numbers are the stored ones");
}

static void test_reply(void)
{
	struct bclass_reply r;
	char buf[256];

	bclass_reply_init(&r, "550 5.1.1 no such user", "5.1.1", true, buf, sizeof(buf));
	tap_ok(r.br_code == 550 && strcmp(r.br_status, "5.1.1") == 0,
	       "reply: code and status from the reply");
	bclass_reply_init(&r, "host mx[192.0.2.1]:25 said: 421 4.7.0 [TSS04] x", "4.4.2", false,
			  buf, sizeof(buf));
	tap_ok(r.br_code == 421 && strcmp(r.br_status, "4.7.0") == 0,
	       "reply: the remote reply inside ringmta's reason wins over its status");
	bclass_reply_init(&r, "host mx-250-1.example[192.0.2.1]:25 said: 421 4.7.0 Try again later",
			  "4.4.2", false, buf, sizeof(buf));
	tap_ok(r.br_code == 421 && strcmp(r.br_status, "4.7.0") == 0,
	       "reply: digits in the host's name are not its code (%u %s)", r.br_code,
	       r.br_status);
	bclass_reply_init(&r, "connect to mx[192.0.2.1]:25: Connection refused", "4.4.1", false,
			  buf, sizeof(buf));
	tap_ok(r.br_code == 400 && strcmp(r.br_status, "4.4.1") == 0,
	       "reply: ringmta's status for its own reason (%u %s)", r.br_code, r.br_status);
	bclass_reply_init(&r, "some text", NULL, true, buf, sizeof(buf));
	tap_ok(r.br_code == 500 && r.br_status[0] == '\0', "reply: nothing known: the result");
	bclass_reply_init(&r, "421 4.7.0 unusual rate of 4.7.0 unsolicited mail", NULL, false,
			  buf, sizeof(buf));
	tap_ok(strcmp(r.br_text, "421 4.7.0 unusual rate of unsolicited mail") == 0,
	       "reply: repeated status of continuation lines removed: %s", r.br_text);
	bclass_reply_init(&r, "550 5.1.1 x", "4.4.2", true, buf, 4);
	tap_ok(r.br_len == 3 && strcmp(r.br_text, "550") == 0, "reply: text cut to the buffer");
}

static void test_table(const struct bclass_rules *rules)
{
	unsigned bad = 0, n = sizeof(cases) / sizeof(cases[0]);

	for (unsigned i = 0; i < n; i++) {
		const struct bcase *c = &cases[i];
		char stored[2048], ecode[16], buf[1024];
		struct bclass_reply in;
		const char *where = "-";
		unsigned got;

		if (c->ecode == NULL) {
			stored_form(c->reply, stored, sizeof(stored), ecode);
		} else {
			snprintf(stored, sizeof(stored), "%s", c->reply);
			snprintf(ecode, sizeof(ecode), "%s", c->ecode);
		}
		bclass_reply_init(&in, stored, ecode, c->failed, buf, sizeof(buf));
		got = bclass_rules_match(rules, &in, &where);
		if (got == BCLASS_NONE)
			got = BCLASS_OTHER;
		if (got != (unsigned)c->want) {
			bad++;
			tap_ok(0, "case %u: want %s, got %s (rule %s): %s", i,
			       bclass_name(c->want), bclass_name(got), where, stored);
		}
	}
	tap_ok(n >= 100, "the table has at least 100 real replies (%u)", n);
	tap_ok(bad == 0, "every reply of the table gets its class (%u wrong)", bad);
}

static void test_operator_rules(void)
{
	static const char mine[] =
		"rules:\n"
		"  - class: policy\n"
		"    status: [4.7.28]\n"
		"    reply: 'unusual rate'\n"
		"  - class: invalid-recipient\n"
		"    code: 552\n"
		"    reply: 'mailbox full'\n";
	struct bclass_rules *r;
	struct bclass_reply in;
	char err[512], buf[512], path[600];
	const char *tmp = getenv("TMPDIR");
	FILE *f;

	snprintf(path, sizeof(path), "%s/test_bclass_mine.yaml", tmp ? tmp : "/tmp");
	f = fopen(path, "w");
	fputs(mine, f);
	fclose(f);
	tap_ok(bclass_rules_load(&r, path, err, sizeof(err)) == 0,
	       "operator file then built-in rules load");
	bclass_reply_init(&in, "421 4.7.28 unusual rate of unsolicited mail", NULL, false, buf,
			  sizeof(buf));
	tap_ok(bclass_rules_match(r, &in, NULL) == BCLASS_POLICY,
	       "an operator rule is checked before the built-in ones");
	bclass_reply_init(&in, "552 5.2.2 mailbox full", NULL, true, buf, sizeof(buf));
	tap_ok(bclass_rules_match(r, &in, NULL) == BCLASS_INVALID_RECIPIENT,
	       "an operator rule with a code");
	bclass_reply_init(&in, "452 4.2.2 mailbox full", NULL, false, buf, sizeof(buf));
	tap_ok(bclass_rules_match(r, &in, NULL) == BCLASS_MAILBOX_FULL,
	       "another code falls through to the built-in rules");
	bclass_current_set(r);
	tap_ok(bclass_classify("421 4.7.28 unusual rate", "4.7.28", false) == BCLASS_POLICY &&
	       bclass_classify("299 what", NULL, true) == BCLASS_OTHER,
	       "bclass_classify uses the current rules; nothing matches: other");
	bclass_current_set(NULL);
	tap_ok(bclass_classify("550 5.1.1 no", "5.1.1", true) == BCLASS_OTHER,
	       "without rules: other");
	unlink(path);
}

/*
 * An operator's pattern that backtracks without end ("(a+)+$") must not
 * stall a delivery worker: the work of one match is bounded (as for the
 * shaping rules), so past the bound the rule does not match and the next
 * one decides. The subject here would match the first rule's second
 * branch ("b") after about 2^22 steps per start position: far past the
 * bound, well within PCRE2's default limit of ten million.
 */
static void test_match_limit(void)
{
	static const char mine[] =
		"rules:\n"
		"  - class: policy\n"
		"    reply: '(a+)+$|b'\n"
		"  - class: dns\n"
		"    reply: 'b'\n";
	struct bclass_rules *r;
	struct bclass_reply in;
	char err[512], buf[512], subj[64];

	snprintf(subj, sizeof(subj), "550 %.22sb", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	bclass_rules_new(&r);
	tap_ok(bclass_rules_add_text(r, "t.yaml", mine, strlen(mine), err, sizeof(err)) == 0,
	       "a backtracking pattern loads (%s)", err);
	bclass_reply_init(&in, subj, NULL, true, buf, sizeof(buf));
	tap_ok(bclass_rules_match(r, &in, NULL) == BCLASS_DNS,
	       "a pattern past the match bound does not match; the next rule decides");
	bclass_rules_unref(&r);
}

static atomic_int stress_bad, stress_runs;
static atomic_bool stress_stop;

static void *stress_classify(void *arg)
{
	(void)arg;
	while (!atomic_load(&stress_stop)) {
		unsigned c = bclass_classify("550 5.1.1 <a@b>: Recipient address rejected: User"
					     " unknown", "5.1.1", true);

		if (c != BCLASS_INVALID_RECIPIENT && c != BCLASS_POLICY)
			atomic_fetch_add(&stress_bad, 1);
		atomic_fetch_add(&stress_runs, 1);
	}
	return NULL;
}

/* Classifying on several threads while reloads swap the rules: every
 * answer comes from one whole rule set (ASan sees any use after free). */
static void test_threads_and_reload(void)
{
	static const char alt[] = "rules:\n  - class: policy\n    status: [5.1.1]\n";
	pthread_t t[4];
	char err[256];
	struct bclass_rules *first;
	int ok = bclass_rules_load(&first, "", err, sizeof(err)) == 0;

	bclass_current_set(first);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, stress_classify, NULL);
	for (int i = 0; i < 200 && ok; i++) {
		struct bclass_rules *r;

		ok = bclass_rules_new(&r) == 0 &&
		     (i % 2 == 0 || bclass_rules_add_text(r, "alt", alt, sizeof(alt) - 1, err,
							  sizeof(err)) == 0) &&
		     bclass_rules_add_builtin(r, err, sizeof(err)) == 0;
		bclass_current_set(r);
	}
	atomic_store(&stress_stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	bclass_current_set(NULL);
	tap_ok(ok && atomic_load(&stress_bad) == 0 && atomic_load(&stress_runs) > 200,
	       "4 threads classify through 200 reloads: always a whole rule set's answer");
}

struct bad_case {
	const char *text;
	const char *err;
};

static void test_errors(void)
{
	static const struct bad_case bad[] = {
		{ "rules:\n  - class: nope\n    status: 5.1.1\n",
		  "t.yaml:2: class: unknown class 'nope'" },
		{ "rules:\n  - class: dns\n", "t.yaml:2: a rule needs status or reply (or both)" },
		{ "rules:\n  - class: dns\n    status: 5.1\n",
		  "t.yaml:3: status: expected an enhanced status code such as 5.1.1, or a prefix"
		  " such as \"5.7.\"" },
		/* 16 characters with the "*": one more than a status slot holds */
		{ "rules:\n  - class: dns\n    status: \"4.7.66666666666*\"\n",
		  "t.yaml:3: status: expected an enhanced status code such as 5.1.1, or a prefix"
		  " such as \"5.7.\"" },
		{ "rules:\n  - class: dns\n    status: [5.1.1, x]\n",
		  "t.yaml:3: status: expected an enhanced status code such as 5.1.1, or a prefix"
		  " such as \"5.7.\"" },
		{ "rules:\n  - class: dns\n\n    reply: 'a(b'\n",
		  "t.yaml:4: reply: bad regular expression at offset 3: missing closing"
		  " parenthesis" },
		{ "rules:\n  - class: dns\n    status: 4.4.3\n    code: 6xx\n",
		  "t.yaml:4: code: expected 4xx, 5xx or a reply code such as 550" },
		{ "rules:\n  - class: dns\n    status: 4.4.3\n    when: now\n",
		  "t.yaml:4: unknown key 'when' (class, status, reply, code)" },
		{ "rule:\n  - class: dns\n",
		  "t.yaml:1: expected one key, \"rules:\", holding a list of rules" },
		{ "rules:\n  - status: 4.4.3\n", "t.yaml:2: a rule needs a class" },
		{ "rules:\n  - just a string\n",
		  "t.yaml:2: a rule is a map (class, status, reply, code)" },
	};
	struct bclass_rules *r;
	char err[512];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bclass_rules_new(&r);
		err[0] = '\0';
		tap_ok(bclass_rules_add_text(r, "t.yaml", bad[i].text, strlen(bad[i].text), err,
					     sizeof(err)) == -1 && strcmp(err, bad[i].err) == 0 &&
		       bclass_rules_count(r) == 0,
		       "error %u reported with file:line: %s", i, err);
		bclass_rules_unref(&r);
	}
	tap_ok(bclass_rules_load(&r, "/nonexistent/rules.yaml", err, sizeof(err)) == -1 &&
	       r == NULL && strncmp(err, "/nonexistent/rules.yaml", 23) == 0,
	       "a missing operator file is an error: %s", err);
	{
		/* Every bad rule of a file, and the errors of every file. */
		static const char two[] = "rules:\n  - class: nope\n    status: 4.4.3\n"
					  "  - class: dns\n    status: 4.4.3\n"
					  "  - status: 5.1.1\n";
		char path[] = "/tmp/test_bclass_XXXXXX";
		char many[4096];
		int fd = mkstemp(path);
		char files[256];

		bclass_rules_new(&r);
		tap_ok(bclass_rules_add_text(r, "t.yaml", two, strlen(two), many, sizeof(many)) ==
			       -1 && strcmp(many, "t.yaml:2: class: unknown class 'nope'\n"
					    "t.yaml:6: a rule needs a class") == 0 &&
			       bclass_rules_count(r) == 0,
		       "every bad rule of one file is reported");
		bclass_rules_unref(&r);
		tap_ok(fd >= 0 && write(fd, two, strlen(two)) == (ssize_t)strlen(two),
		       "a rules file written");
		close(fd);
		snprintf(files, sizeof(files), "/nonexistent/a.yaml %s", path);
		tap_ok(bclass_rules_load(&r, files, many, sizeof(many)) == -1 && r == NULL &&
			       strncmp(many, "/nonexistent/a.yaml", 19) == 0 &&
			       strstr(many, ":2: class: unknown class 'nope'\n") != NULL &&
			       strstr(many, ":6: a rule needs a class") != NULL,
		       "the errors of every file are reported");
		unlink(path);
	}
}

int main(void)
{
	struct bclass_rules *rules;
	char err[512];

	test_names();
	test_reply();
	test_match_limit();
	err[0] = '\0';
	if (bclass_rules_new(&rules) < 0 || bclass_rules_add_builtin(rules, err, sizeof(err)) < 0)
		tap_ok(0, "the built-in rules load: %s", err);
	else
		tap_ok(bclass_rules_count(rules) > 50, "the built-in rules load");
	test_table(rules);
	bclass_rules_unref(&rules);
	test_operator_rules();
	test_threads_and_reload();
	test_errors();
	return tap_done();
}
